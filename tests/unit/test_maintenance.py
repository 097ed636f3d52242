"""The reaper's report (what it did or would do) and the names of tail files,
without a database, S3 or a tail on disk."""

from __future__ import annotations

import json
import logging

import pytest

from rindle_tus import maintenance
from rindle_tus.maintenance import (
    ABORT,
    DELETE_OBJECT,
    DELETE_TAIL,
    DONE,
    EXPIRE,
    FAILED,
    GONE,
    SKIPPED,
    WOULD,
    Report,
)
from rindle_tus.storage import tus_tail_path


def test_an_empty_report_has_nothing_to_do() -> None:
    assert Report().summary() == "nothing to do"
    assert Report(dry_run=True).summary() == "nothing to do (dry run)"
    assert Report().as_dict() == {"dry_run": False, "summary": "nothing to do", "counts": {}, "failed": []}


def test_an_action_reads_as_result_kind_target_session_and_detail() -> None:
    report = Report()
    assert str(report.add(EXPIRE, "s1", DONE)) == "done expire_session s1"
    assert str(report.add(ABORT, "up-1", FAILED, session="s1", detail="boom")) == (
        "failed abort_upload up-1 (session s1): boom"
    )
    # The session is not repeated when it is the target.
    assert str(report.add(EXPIRE, "s2", SKIPPED, session="s2", detail="leased")) == "skipped expire_session s2: leased"


def _sample(dry_run: bool = False) -> Report:
    report = Report(dry_run=dry_run)
    report.add(EXPIRE, "s1", DONE)
    report.add(EXPIRE, "s2", DONE)
    report.add(ABORT, "u1", FAILED, session="s1", detail="S3 said no")
    report.add(DELETE_OBJECT, "k1", GONE)
    report.add(DELETE_TAIL, "s2", SKIPPED, detail="leased")
    return report


def test_count_by_kind_by_result_or_both() -> None:
    report = _sample()
    assert report.count() == 5
    assert report.count(EXPIRE) == 2
    assert report.count(result=DONE) == 2
    assert report.count(EXPIRE, DONE) == 2
    assert report.count(ABORT, DONE) == 0
    assert report.counts() == {
        "expire_session:done": 2,
        "abort_upload:failed": 1,
        "delete_object:gone": 1,
        "delete_tail:skipped": 1,
    }


def test_failed_lists_the_failed_actions_in_order() -> None:
    report = _sample()
    report.add(EXPIRE, "s3", FAILED)
    assert [str(a) for a in report.failed] == [
        "failed abort_upload u1 (session s1): S3 said no",
        "failed expire_session s3",
    ]


def test_summary_tallies_each_kind_and_result_sorted() -> None:
    assert _sample().summary() == (
        "1 abort_upload failed, 1 delete_object gone, 1 delete_tail skipped, 2 expire_session done"
    )
    assert _sample(dry_run=True).summary().endswith(" (dry run)")


def test_as_dict_is_a_json_safe_digest() -> None:
    digest = _sample(dry_run=True).as_dict()
    assert json.loads(json.dumps(digest)) == digest
    assert digest["dry_run"] is True
    assert digest["summary"] == _sample(dry_run=True).summary()
    assert digest["counts"]["expire_session:done"] == 2
    assert digest["failed"] == ["failed abort_upload u1 (session s1): S3 said no"]


def test_extend_adds_the_actions_of_another_report() -> None:
    report = Report()
    report.add(EXPIRE, "s1", WOULD)
    report.extend(_sample())
    assert report.count() == 6 and report.count(result=WOULD) == 1


def test_done_is_logged_as_info_and_failed_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        report = Report()
        report.add(EXPIRE, "s1", DONE)
        report.add(ABORT, "u1", FAILED, detail="boom")
        report.add(EXPIRE, "s2", SKIPPED)
    logged = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert logged == [
        (logging.INFO, "reaper: done expire_session s1"),
        (logging.WARNING, "reaper: failed abort_upload u1: boom"),
    ]


def test_session_id_of_tail_reverses_tus_tail_path() -> None:
    for session_id in ("abc", "Zm9v-_", "../../etc/passwd", "é"):
        name = tus_tail_path(session_id).name
        assert maintenance.session_id_of_tail(name) == session_id
        assert maintenance.session_id_of_tail(f"{name}.1234.tmp") == session_id
    assert maintenance.session_id_of_tail("notes.txt") is None
    assert maintenance.session_id_of_tail("YWJj=.tail") is None
