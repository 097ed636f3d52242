"""``manage.py rindle_tus_reap``: what it prints and what it does."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rindle_tus.models import State, TusSession
from rindle_tus.storage import tus_tail_path

from .conftest import S3, TusClient
from .test_maintenance import expire, prefix, receiving, upload_ids

__all__ = ["prefix"]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rindle_tus_reap", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_dry_run_prints_one_line_per_item_and_a_summary_and_changes_nothing(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    session, _ = receiving(tus)
    expire(session)
    out, _ = run("--dry-run")
    lines = out.splitlines()
    assert lines[:3] == [
        f"would abort_upload {session.key} (session {session.pk}): upload id {session.upload_id}",
        f"would delete_tail {tus_tail_path(session.pk)} (session {session.pk})",
        f"would expire_session {session.pk}",
    ]
    assert lines[-1].endswith("(dry run)")
    assert TusSession.objects.get(pk=session.pk).state == State.RECEIVING
    assert upload_ids(s3, prefix) == {session.upload_id}


def test_reap_prints_what_it_did_and_a_summary(tus: TusClient, s3: S3, prefix: str) -> None:
    session, _ = receiving(tus)
    expire(session)
    out, err = run()
    assert f"done expire_session {session.pk}" in out.splitlines()
    assert out.splitlines()[-1] == "1 abort_upload done, 1 delete_tail done, 1 expire_session done"
    assert err == ""
    assert upload_ids(s3, prefix) == set()


def test_nothing_to_do_says_so(db: None, tail_root: object, s3: S3, prefix: str) -> None:
    out, _ = run("--only", "expired", "--only", "rows", "--only", "tails")
    assert out == "nothing to do\n"


def test_only_tails_sweeps_tails_and_leaves_expired_sessions(tus: TusClient, s3: S3, prefix: str) -> None:
    finished, _ = receiving(tus, seed=1)
    TusSession.objects.filter(pk=finished.pk).update(state=State.COMPLETED)
    waiting, _ = receiving(tus, seed=2)
    expire(waiting)
    out, _ = run("--only", "tails")
    assert out.splitlines()[-1] == "2 sweep_tail done"
    assert TusSession.objects.get(pk=waiting.pk).state == State.RECEIVING
    assert upload_ids(s3, prefix) == {finished.upload_id, waiting.upload_id}


def test_a_failure_is_printed_and_exits_non_zero_after_the_rest_ran(tus: TusClient, s3: S3, prefix: str) -> None:
    bad, _ = receiving(tus, seed=1)
    good, _ = receiving(tus, seed=2)
    TusSession.objects.filter(pk=bad.pk).update(key="")
    expire(bad)
    expire(good)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 step"):
        call_command("rindle_tus_reap", "--only", "expired", stdout=out, stderr=err)
    assert err.getvalue().startswith("failed abort_upload")
    assert f"done expire_session {good.pk}" in out.getvalue().splitlines()


def test_unknown_step_is_refused(db: None) -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("rindle_tus_reap", "--only", "everything")
