"""The admin: pages for every state, read-only, and actions that do what they say."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from rindle_tus.exceptions import StorageError
from rindle_tus.locking import Lease
from rindle_tus.models import State, TusSession
from rindle_tus.storage import S3Backend, tus_tail_path
from rindle_tus.storage.shared_tail import S3Tail, tus_tail_key

from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256
from .test_maintenance import expire, prefix, receiving, upload_ids, with_failed_completion

__all__ = ["prefix"]

CHANGELIST = "/admin/rindle_tus/tussession/"


def change_url(session: TusSession) -> str:
    # Ids may hold "_", which the admin escapes in its URLs ("_" -> "_5F").
    return reverse("admin:rindle_tus_tussession_change", args=[quote(session.pk)])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def act(client: Client, action: str, *sessions: TusSession) -> Any:
    data = {"action": action, "_selected_action": [s.pk for s in sessions]}
    response = client.post(CHANGELIST, data, follow=True)
    assert response.status_code == 200
    return response


@pytest.fixture
def every_state(tus: TusClient, s3: S3, prefix: str) -> dict[str, Any]:
    # Part 1 committed by the time its PATCH answers, to show it.
    with override_settings(RINDLE_TUS_WRITE_BEHIND=0):
        active, active_data = receiving(tus, size=12 * MiB, sent=PART + MiB, seed=1)
    leased, _ = receiving(tus, seed=2)
    lease = Lease.acquire(leased.pk)
    overdue, _ = receiving(tus, seed=3)
    expire(overdue)
    stuck, stuck_data = with_failed_completion(tus, s3, seed=4)
    completed_data = payload(PART + 77, seed=5)
    completed = session_for(tus.upload(completed_data, metadata={"filename": "résumé \"final\".pdf".encode()}))
    terminated, _ = receiving(tus, seed=6)
    assert tus.delete(f"/files/{terminated.pk}").status_code == 204
    expired, _ = receiving(tus, seed=7)
    expire(expired)
    failed = TusSession.objects.create(part_size=PART, key=f"{prefix}failed", state=State.FAILED, length=10,
                                       offset=10, last_error="The assembled object has 9 bytes, not 10.")
    deferred = session_for(tus.new(None))
    TusSession.objects.filter(pk=expired.pk).update(state=State.EXPIRED)
    sessions = {
        "active": active, "leased": leased, "overdue": overdue, "stuck": stuck, "completed": completed,
        "terminated": terminated, "expired": expired, "failed": failed, "deferred": deferred,
    }
    for session in sessions.values():
        session.refresh_from_db()
    yield {**sessions, "data": {"active": active_data, "stuck": stuck_data, "completed": completed_data}}
    lease.release()


def test_session_list_renders_every_state(admin_client: Client, every_state: dict[str, Any]) -> None:
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("active", "leased", "overdue", "stuck", "completed", "terminated", "expired", "failed", "deferred"):
        assert f">{every_state[name].pk}</code>" in body, name  # the whole id
    assert "file-1.bin" in body
    assert '<progress value="6291456" max="12582912"' in body
    assert "6.0\xa0MB of 12.0\xa0MB" in body
    assert 'title="test-node"' in body
    assert "length deferred" in body
    assert "expires in " in body and "active " in body and "created " in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state__exact": "completed"}, {"completed"}),
        ({"state__exact": "receiving"}, {"active", "leased", "overdue", "stuck", "deferred"}),
        ({"q": "file-2.bin"}, {"leased"}),
        ({"q": "final"}, {"completed"}),
    ],
)
def test_session_list_filters_and_searches(
    admin_client: Client, every_state: dict[str, Any], query: dict[str, str], expected: set[str]
) -> None:
    response = admin_client.get(CHANGELIST, query)
    shown = {s.pk for s in response.context["cl"].result_list}
    names = {"active", "leased", "overdue", "stuck", "completed", "terminated", "expired", "failed", "deferred"}
    assert shown == {every_state[n].pk for n in names if n in expected}


def test_session_list_searches_by_id_key_and_upload_id(admin_client: Client, every_state: dict[str, Any]) -> None:
    leased = every_state["leased"]
    for term in (leased.pk, leased.key, leased.upload_id):
        shown = {s.pk for s in admin_client.get(CHANGELIST, {"q": term}).context["cl"].result_list}
        assert shown == {leased.pk}, term


def test_session_list_filters_by_node(admin_client: Client, every_state: dict[str, Any]) -> None:
    shown = {s.pk for s in admin_client.get(CHANGELIST, {"tail_node": "test-node"}).context["cl"].result_list}
    assert every_state["active"].pk in shown
    assert every_state["failed"].pk not in shown


def test_session_page_renders_every_state(admin_client: Client, every_state: dict[str, Any]) -> None:
    for name in ("active", "leased", "overdue", "stuck", "completed", "terminated", "expired", "failed", "deferred"):
        session = every_state[name]
        response = admin_client.get(change_url(session))
        assert response.status_code == 200, name
        assert session.key in response.content.decode(), name


def test_session_page_and_list_link_of_an_id_that_looks_escaped(admin_client: Client) -> None:
    # "_2F" in an id is what the admin's own escaping would produce for "/";
    # the list must link to the page that shows this very row.
    session = TusSession.objects.create(id="abc_2Fdef_5Fghi-jkl_mno_41pqrstu", part_size=PART, key="tus/escaped")
    body = admin_client.get(CHANGELIST).content.decode()
    link = re.search(r'href="([^"]*/change/)"', body)
    assert link is not None
    assert link.group(1) == change_url(session)
    response = admin_client.get(link.group(1))
    assert response.status_code == 200
    assert "tus/escaped" in response.content.decode()


def test_session_page_shows_parts_metadata_key_and_the_tail_on_this_node(
    admin_client: Client, every_state: dict[str, Any]
) -> None:
    active = every_state["active"]
    body = admin_client.get(change_url(active)).content.decode()
    assert f"<tr><td>1</td><td>{PART}</td><td><code>{html.escape(active.parts[0]['etag'])}</code></td></tr>" in body
    assert "<tr><th>filename</th><td>file-1.bin</td></tr>" in body
    assert f"present on this node (test-node): {MiB} bytes" in body
    assert 'name="offset"' not in body and 'name="parts"' not in body


def test_session_page_says_when_the_tail_is_elsewhere(admin_client: Client, every_state: dict[str, Any]) -> None:
    active = every_state["active"]
    tus_tail_path(active.pk).rename(tus_tail_path(active.pk).with_name("moved-away"))
    body = admin_client.get(change_url(active)).content.decode()
    assert "absent on this node (test-node); last written on test-node" in body


def test_session_page_shows_the_shared_tail_object_with_the_shared_store(
    admin_client: Client, tus: TusClient, s3: S3, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    data = payload(3 * PART, seed=51)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + MiB], 0).status_code == 204
    session = session_for(url)
    key = tus_tail_key(session.pk, S3Backend())
    assert s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == data[PART : PART + MiB]
    assert not tus_tail_path(session.pk).exists()
    body = admin_client.get(change_url(session)).content.decode()
    assert f"present in the shared store (S3 object {key}): {MiB} bytes ({MiB} of them committed)" in body
    assert "on this node" not in body
    s3.client.delete_object(Bucket=s3.bucket, Key=key)
    body = admin_client.get(change_url(session)).content.decode()
    assert f"absent from the shared store (no S3 object {key})" in body

    def unreachable(self: S3Tail) -> int | None:
        raise StorageError("S3 is down")

    monkeypatch.setattr(S3Tail, "size", unreachable)
    response = admin_client.get(change_url(session))
    assert response.status_code == 200
    assert "unknown: the shared store did not answer: storage_error: S3 is down" in response.content.decode()


def test_download_link_of_a_completed_upload_fetches_its_bytes(
    admin_client: Client, every_state: dict[str, Any]
) -> None:
    response = admin_client.get(change_url(every_state["completed"]))
    url = _link(response.content.decode())
    fetched = requests.get(url, timeout=30)
    assert fetched.status_code == 200
    assert sha256(fetched.content) == sha256(every_state["data"]["completed"])
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9" in fetched.headers["Content-Disposition"]


def _link(body: str) -> str:
    match = re.search(r'<a href="(http[^"]+)">', body)
    assert match, "no download link"
    return html.unescape(match[1])


def test_no_download_link_before_completion(admin_client: Client, every_state: dict[str, Any]) -> None:
    body = admin_client.get(change_url(every_state["active"])).content.decode()
    assert "only for completed uploads" in body


def test_nothing_can_be_added_edited_or_deleted(admin_client: Client, every_state: dict[str, Any]) -> None:
    active = every_state["active"]
    assert admin_client.get(reverse("admin:rindle_tus_tussession_add")).status_code == 403
    response = admin_client.post(change_url(active), {"offset": "0", "parts": "[]", "state": "completed"})
    assert response.status_code == 403
    assert admin_client.post(reverse("admin:rindle_tus_tussession_delete", args=[quote(active.pk)])).status_code == 403
    fresh = TusSession.objects.get(pk=active.pk)
    assert (fresh.offset, fresh.parts, fresh.state) == (active.offset, active.parts, active.state)
    actions = dict(admin_client.get(CHANGELIST).context["action_form"].fields["action"].choices)
    assert set(actions) == {"", "terminate_selected", "retry_completion", "reap_selected"}


def test_viewer_without_change_permission_gets_no_actions(client: Client, every_state: dict[str, Any]) -> None:
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tussession"))
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None
    client.post(CHANGELIST, {"action": "terminate_selected", "_selected_action": [every_state["active"].pk]})
    assert TusSession.objects.get(pk=every_state["active"].pk).state == State.RECEIVING


def test_terminate_action_aborts_and_cleans_up_and_leaves_finished_uploads(
    admin_client: Client, every_state: dict[str, Any], s3: S3, prefix: str
) -> None:
    active, completed, leased = every_state["active"], every_state["completed"], every_state["leased"]
    response = act(admin_client, "terminate_selected", active, completed, leased)
    notes = messages_of(response)
    assert notes[0] == "Terminate: 1 terminate done, 2 terminate skipped"
    assert any(leased.pk in n and "a request holds it" in n for n in notes)
    assert TusSession.objects.get(pk=active.pk).state == State.TERMINATED
    assert active.upload_id not in upload_ids(s3, prefix)
    assert not tus_tail_path(active.pk).exists()
    assert s3.sha256(completed.key) == sha256(every_state["data"]["completed"])
    assert TusSession.objects.get(pk=leased.pk).state == State.RECEIVING


def test_terminate_action_deletes_a_failed_uploads_object(admin_client: Client, tus: TusClient, s3: S3) -> None:
    # A failed upload's multipart upload was assembled into an object of the
    # wrong size: nobody can use it, so terminating it deletes it.
    data = payload(PART + 5, seed=41)
    failed = session_for(tus.upload(data))
    assert s3.sha256(failed.key) == sha256(data)
    TusSession.objects.filter(pk=failed.pk).update(
        state=State.FAILED, last_error=f"The assembled object has {len(data) - 1} bytes, not {len(data)}."
    )
    notes = messages_of(act(admin_client, "terminate_selected", failed))
    assert notes[0] == "Terminate: 1 terminate done"
    failed.refresh_from_db()
    assert failed.state == State.TERMINATED and failed.last_error == ""
    assert not s3.exists(failed.key)


def test_retry_completion_action_completes_a_stuck_upload(
    admin_client: Client, every_state: dict[str, Any], s3: S3
) -> None:
    stuck, active = every_state["stuck"], every_state["active"]
    response = act(admin_client, "retry_completion", stuck, active)
    notes = messages_of(response)
    assert notes[0] == "Retry completion: 1 complete done, 1 complete skipped"
    assert TusSession.objects.get(pk=stuck.pk).state == State.COMPLETED
    assert s3.sha256(stuck.key) == sha256(every_state["data"]["stuck"])
    assert TusSession.objects.get(pk=active.pk).state == State.RECEIVING


def test_reap_selected_action_reaps_the_overdue_and_spares_the_active(
    admin_client: Client, every_state: dict[str, Any], s3: S3, prefix: str
) -> None:
    overdue, active, leased = every_state["overdue"], every_state["active"], every_state["leased"]
    TusSession.objects.filter(pk=leased.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = act(admin_client, "reap_selected", overdue, active, leased)
    notes = messages_of(response)
    assert notes[0].startswith("Reap: 1 abort_upload done, 1 delete_tail done, 1 expire_session done")
    assert TusSession.objects.get(pk=overdue.pk).state == State.EXPIRED
    remaining = upload_ids(s3, prefix)
    assert overdue.upload_id not in remaining
    assert {active.upload_id, leased.upload_id} <= remaining
    assert tus_tail_path(active.pk).exists() and tus_tail_path(leased.pk).exists()


def test_the_list_and_the_page_show_and_filter_by_the_protocol_that_created_an_upload(
    admin_client: Client, tus: TusClient, s3: S3
) -> None:
    by_tus = session_for(tus.new(10))
    draft = {"Upload-Draft-Interop-Version": "6", "Upload-Complete": "?0", "Upload-Length": "10"}
    response = tus.client.generic("POST", "/files/", b"", headers=draft)
    assert response.status_code == 201, response.content
    by_draft = session_for(response["Location"])
    assert (by_tus.protocol, by_draft.protocol) == ("tus", "ietf-draft-6")

    listing = admin_client.get(CHANGELIST).content.decode()
    assert "tus 1.0.0" in listing and "IETF draft, interop 6" in listing
    assert "IETF draft, interop 6" in admin_client.get(change_url(by_draft)).content.decode()
    shown = {s.pk for s in admin_client.get(CHANGELIST, {"protocol": "ietf-draft-6"}).context["cl"].result_list}
    assert shown == {by_draft.pk}
