"""The host application's hooks and signals."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from rindle_tus import signals
from rindle_tus.exceptions import UploadRejected

from .conftest import S3, TusClient, payload, session_for, sha256


def refuse_big_or_exe(request: Any, length: int | None, metadata: dict[str, bytes | None]) -> None:
    if length is not None and length > 100:
        raise UploadRejected("Files are limited to 100 bytes here.", status=413)
    if (metadata.get("filename") or b"").endswith(b".exe"):
        raise UploadRejected("Executables are not accepted.")


def refuse_secret_metadata(request: Any, action: str, session: Any) -> bool:
    return not (session is not None and session.metadata.get("secret"))


@pytest.fixture
def users(db: None) -> tuple[Any, Any]:
    model = get_user_model()
    return model.objects.create_user("alice", password="pw"), model.objects.create_user("bob", password="pw")


def _client_for(user: Any) -> TusClient:
    client = Client()
    client.force_login(user)
    return TusClient(client)


def test_pre_create_hook_refuses_with_its_status_and_message(tus: TusClient, settings: Any) -> None:
    settings.RINDLE_TUS_PRE_CREATE = "tests.test_hooks.refuse_big_or_exe"
    response = tus.create(101)
    assert response.status_code == 413
    assert response.content.decode() == "rejected: Files are limited to 100 bytes here.\n"
    assert tus.create(10, metadata={"filename": b"x.exe"}).status_code == 400
    assert tus.create(10, metadata={"filename": b"x.txt"}).status_code == 201


def test_permission_hook_sees_every_action(tus: TusClient, settings: Any) -> None:
    seen: list[str] = []

    def record(request: Any, action: str, session: Any) -> bool:
        seen.append(action)
        return True

    settings.RINDLE_TUS_PERMISSION = record
    url = tus.new(3)
    tus.head(url)
    tus.patch(url, b"abc", 0)
    tus.client.get(url)
    tus.delete(url)
    assert seen == ["create", "head", "patch", "get", "delete"]


def test_permission_hook_refusal_is_403_for_a_user_and_401_for_anonymous(
    s3: S3, tail_root: Any, settings: Any, users: tuple[Any, Any]
) -> None:
    settings.RINDLE_TUS_PERMISSION = "tests.test_hooks.refuse_secret_metadata"
    anonymous = TusClient(Client())
    url = anonymous.new(3, metadata={"secret": b"1"})
    assert anonymous.head(url).status_code == 401
    assert _client_for(users[0]).head(url).status_code == 403


def test_authenticated_only_requires_login(s3: S3, tail_root: Any, settings: Any, users: tuple[Any, Any]) -> None:
    settings.RINDLE_TUS_PERMISSION = "rindle_tus.hooks.authenticated_only"
    assert TusClient(Client()).create(3).status_code == 401
    assert _client_for(users[0]).create(3).status_code == 201


def test_owner_only_keeps_uploads_to_their_creator(
    s3: S3, tail_root: Any, settings: Any, users: tuple[Any, Any]
) -> None:
    settings.RINDLE_TUS_PERMISSION = "rindle_tus.hooks.owner_only"
    alice, bob = _client_for(users[0]), _client_for(users[1])
    url = alice.new(6)
    assert alice.patch(url, b"abc", 0).status_code == 204
    assert bob.head(url).status_code == 403
    assert bob.patch(url, b"def", 3).status_code == 403
    assert bob.delete(url).status_code == 403
    assert alice.patch(url, b"def", 3).status_code == 204
    assert bob.client.get(url).status_code == 403
    assert alice.client.get(url).status_code == 302
    assert session_for(url).created_by == users[0]


def test_signals_follow_the_upload(tus: TusClient, django_capture_on_commit_callbacks: Any) -> None:
    events: list[tuple[str, dict[str, Any]]] = []

    def receiver_for(name: str) -> Any:
        def receiver(sender: Any, **kwargs: Any) -> None:
            events.append((name, kwargs))

        return receiver

    receivers = {
        signals.upload_created: receiver_for("created"),
        signals.upload_finished: receiver_for("finished"),
        signals.upload_terminated: receiver_for("terminated"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    try:
        data = payload(10)
        with django_capture_on_commit_callbacks(execute=True):
            url = tus.new(len(data))
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            tus.patch(url, data, 0)
        assert len(callbacks) == 1
        with django_capture_on_commit_callbacks(execute=True):
            tus.delete(url)
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)
    assert [name for name, _ in events] == ["created", "finished", "terminated"]
    finished = events[1][1]
    session = session_for(url)
    assert finished["key"] == session.key
    assert finished["size"] == 10
    assert finished["session"].pk == session.pk


def test_finished_signal_is_not_sent_before_the_commit(tus: TusClient, django_capture_on_commit_callbacks: Any) -> None:
    sent: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        sent.append(kwargs)

    signals.upload_finished.connect(receiver)
    try:
        url = tus.new(3)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            tus.patch(url, b"abc", 0)
        assert sent == []
        for callback in callbacks:
            callback()
        assert len(sent) == 1
    finally:
        signals.upload_finished.disconnect(receiver)


def test_a_failing_receiver_does_not_fail_the_upload(
    tus: TusClient, s3: S3, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("host application bug")

    signals.upload_finished.connect(broken)
    try:
        url = tus.new(3)
        with django_capture_on_commit_callbacks(execute=True):
            response = tus.patch(url, b"abc", 0)
    finally:
        signals.upload_finished.disconnect(broken)
    assert response.status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(b"abc")
    assert any("host application bug" in str(r.exc_info) for r in caplog.records if r.exc_info)


# -- RINDLE_TUS_AUTHENTICATE: clients without the session cookie ------------------


def _header_authenticator(calls: list[str]) -> Any:
    """Signs in as the user named in X-Test-User; 401 for one that does not exist."""
    from rindle_tus.exceptions import NotAuthenticated

    def authenticate(request: Any) -> Any:
        calls.append(request.method)
        name = request.headers.get("X-Test-User")
        if name is None:
            return None
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise NotAuthenticated(f"No such user: {name}.")
        return user

    return authenticate


def test_the_authenticate_hooks_user_owns_the_upload_and_passes_the_permission_hook(
    tus: TusClient, s3: S3, settings: Any, users: tuple[Any, Any]
) -> None:
    alice, _ = users
    calls: list[str] = []
    settings.RINDLE_TUS_AUTHENTICATE = _header_authenticator(calls)
    settings.RINDLE_TUS_PERMISSION = "rindle_tus.hooks.owner_only"
    data = payload(1000, seed=3)
    as_alice = {"X-Test-User": "alice"}
    url = tus.new(len(data), headers=as_alice)
    assert tus.patch(url, data, 0, headers=as_alice).status_code == 204
    assert session_for(url).created_by_id == alice.pk
    assert s3.sha256(session_for(url).key) == sha256(data)
    # Another user's token may not touch it; no token is 401.
    assert tus.request("HEAD", url, headers={"X-Test-User": "bob"}, content_type="").status_code == 403
    assert tus.head(url).status_code == 401
    assert "OPTIONS" not in calls


def test_a_credential_the_hook_refuses_is_401_with_its_message(tus: TusClient, settings: Any, users: Any) -> None:
    settings.RINDLE_TUS_AUTHENTICATE = _header_authenticator([])
    response = tus.create(10, headers={"X-Test-User": "mallory"})
    assert response.status_code == 401
    assert "No such user: mallory." in response.content.decode()


def test_a_signed_in_user_is_not_given_to_the_hook(settings: Any, users: tuple[Any, Any], s3: S3,
                                                  tail_root: Any) -> None:
    alice, _ = users
    calls: list[str] = []
    settings.RINDLE_TUS_AUTHENTICATE = _header_authenticator(calls)
    url = _client_for(alice).new(10, headers={"X-Test-User": "bob"})
    assert session_for(url).created_by_id == alice.pk
    assert calls == []
