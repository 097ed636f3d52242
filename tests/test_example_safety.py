"""The example project deployed as it comes: the finished-uploads list follows
RINDLE_TUS_PERMISSION, and the settings default to what is safe to expose."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from example_project.uploads.models import FinishedUpload
from rindle_tus.models import State, TusSession

from .conftest import S3, TusClient, payload, session_for, sha256

ROOT = Path(__file__).resolve().parent.parent
OWNER_ONLY = "rindle_tus.hooks.owner_only"
GiB = 1024**3


def listed(client: Client, path: str = "/uploads/finished/") -> list[str]:
    """The file names the list links to, newest first."""
    response = client.get(path)
    assert response.status_code == 200
    return re.findall(r'<a href="[^"]+" download>([^<]+)</a>', response.content.decode())


def upload_as(user: User, tus: TusClient, s3: S3, name: str, seed: int) -> TusSession:
    tus.client.force_login(user)
    data = payload(1000 + seed, seed=seed)
    session = session_for(tus.upload(data, metadata={"filename": name.encode()}))
    assert s3.sha256(session.key) == sha256(data)
    tus.client.logout()
    return session


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def bob(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("bob", password="bob-password")


# upload_finished is sent once the transaction commits: let it commit.
@pytest.mark.usefixtures("transactional_db")
class TestFinishedList:
    def test_owner_only_lists_each_user_only_their_own_uploads(
        self, settings: Any, tus: TusClient, s3: S3, alice: User, bob: User
    ) -> None:
        settings.RINDLE_TUS_PERMISSION = OWNER_ONLY
        upload_as(alice, tus, s3, "alice.bin", seed=1)
        upload_as(bob, tus, s3, "bob.bin", seed=2)
        as_alice, as_bob = Client(), Client()
        as_alice.force_login(alice)
        as_bob.force_login(bob)
        assert (listed(as_alice), listed(as_alice, "/")) == (["alice.bin"], ["alice.bin"])
        assert (listed(as_bob), listed(as_bob, "/")) == (["bob.bin"], ["bob.bin"])

    def test_owner_only_lists_nothing_to_anonymous_visitors(
        self, settings: Any, tus: TusClient, s3: S3, alice: User
    ) -> None:
        settings.RINDLE_TUS_PERMISSION = OWNER_ONLY
        upload_as(alice, tus, s3, "alice.bin", seed=3)
        assert FinishedUpload.objects.count() == 1
        assert (listed(Client()), listed(Client(), "/")) == ([], [])

    def test_default_permission_lists_every_users_uploads_to_anyone(
        self, tus: TusClient, s3: S3, alice: User, bob: User
    ) -> None:
        upload_as(alice, tus, s3, "alice.bin", seed=4)
        upload_as(bob, tus, s3, "bob.bin", seed=5)
        assert listed(Client()) == ["bob.bin", "alice.bin"]

    def test_owner_only_still_holds_once_the_session_is_reaped(
        self, settings: Any, tus: TusClient, s3: S3, alice: User, bob: User
    ) -> None:
        settings.RINDLE_TUS_PERMISSION = OWNER_ONLY
        upload_as(alice, tus, s3, "alice.bin", seed=6)
        upload_as(bob, tus, s3, "bob.bin", seed=7)
        TusSession.objects.all().delete()
        as_alice = Client()
        as_alice.force_login(alice)
        assert (listed(as_alice), listed(Client())) == (["alice.bin"], [])


def test_owner_only_finds_a_users_upload_behind_many_newer_ones_in_bounded_queries(
    settings: Any, db: None, s3: S3, alice: User, bob: User, django_assert_max_num_queries: Any
) -> None:
    settings.RINDLE_TUS_PERMISSION = OWNER_ONLY
    owners = [alice] + [bob] * 300
    sessions = TusSession.objects.bulk_create(
        TusSession(state=State.COMPLETED, key=f"tus/{n}", part_size=0, length=1, offset=1, created_by=owner)
        for n, owner in enumerate(owners)
    )
    # Alice's first, so that the 300 of Bob's are newer.
    for n, session in enumerate(sessions):
        FinishedUpload.objects.create(session_id=session.id, key=session.key, size=1, filename=f"{n}.bin")
    as_alice = Client()
    as_alice.force_login(alice)
    # The login (session, user) and two queries for each hundred records.
    with django_assert_max_num_queries(10):
        assert listed(as_alice) == ["0.bin"]


def test_example_project_serves_static_files_with_debug_off(settings: Any, client: Client) -> None:
    settings.DEBUG = False
    settings.ROOT_URLCONF = "example_project.urls"
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)


def example_settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    """What example_project.settings sets, imported in a clean environment plus ``env``."""
    code = """if True:
        import json
        import example_project.settings as s
        names = ("DEBUG", "RINDLE_TUS_MAX_SIZE", "RINDLE_TUS_MAX_UNFINISHED", "RINDLE_TUS_MAX_TAIL_BYTES",
                 "RINDLE_TUS_MAX_BODIES", "RINDLE_TUS_MAX_MEMORY_PART")
        found = {name: getattr(s, name, "unset") for name in names}
        database = s.DATABASES["default"]
        found.update(CONN_HEALTH_CHECKS=database.get("CONN_HEALTH_CHECKS"), CONN_MAX_AGE=database["CONN_MAX_AGE"])
        print(json.dumps(found))
    """
    found: dict[str, Any] = json.loads(run_example(tmp_path, code, **env).stdout)
    return found


def run_example(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Python ``code`` run in the project with a clean environment plus ``env``."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"EXAMPLE_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_debug_is_off_unless_django_debug_is_set(tmp_path: Path) -> None:
    assert example_settings(tmp_path)["DEBUG"] is False


@pytest.mark.parametrize(
    ("url", "max_age"), [(None, 0), ("postgres://postgres@127.0.0.1:5432/example", 60)]
)
def test_database_connections_are_health_checked_and_kept(tmp_path: Path, url: str | None, max_age: int) -> None:
    found = example_settings(tmp_path, **({"DATABASE_URL": url} if url else {}))
    assert (found["CONN_HEALTH_CHECKS"], found["CONN_MAX_AGE"]) == (True, max_age)


def test_max_size_defaults_to_100_gib(tmp_path: Path) -> None:
    assert example_settings(tmp_path)["RINDLE_TUS_MAX_SIZE"] == 100 * GiB


@pytest.mark.parametrize("value", ["", "none", "None"])
def test_max_size_empty_or_none_means_unlimited(tmp_path: Path, value: str) -> None:
    assert example_settings(tmp_path, RINDLE_TUS_MAX_SIZE=value)["RINDLE_TUS_MAX_SIZE"] is None


def test_max_bodies_defaults_below_the_demos_threads(tmp_path: Path) -> None:
    (threads,) = re.findall(r"--threads (\d+)", (ROOT / "scripts" / "demo").read_text())
    assert example_settings(tmp_path)["RINDLE_TUS_MAX_BODIES"] == 6 < int(threads)


@pytest.mark.parametrize(
    "name",
    ["RINDLE_TUS_MAX_UNFINISHED", "RINDLE_TUS_MAX_TAIL_BYTES", "RINDLE_TUS_MAX_BODIES", "RINDLE_TUS_MAX_MEMORY_PART"],
)
def test_limits_are_read_from_the_environment(tmp_path: Path, name: str) -> None:
    assert example_settings(tmp_path, **{name: "12345"})[name] == 12345


def test_django_request_errors_are_logged_with_debug_off(tmp_path: Path) -> None:
    code = """if True:
        import logging
        import django
        django.setup()
        logging.getLogger("django.request").error("Internal Server Error: /marker/")
    """
    result = run_example(tmp_path, code, DJANGO_SETTINGS_MODULE="example_project.settings", DJANGO_DEBUG="0")
    assert "Internal Server Error: /marker/" in result.stderr
