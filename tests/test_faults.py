"""Real faults in a real cluster: an app server killed with SIGKILL at several
points of a PATCH, S3 going away mid-request, a client vanishing mid-body.
After each, the row describes a committed state, HEAD says so, and the
client resumes from HEAD's offset to a byte-exact object.

Every node runs with the default lease. The resume is what a client does,
once: HEAD, then PATCH from its offset; a killed request's lease must not
stand in its way (a holder gone from this machine is recognised at once).
"""

from __future__ import annotations

import os
import re
import shutil
import threading

import pytest

from .cluster import (
    BUCKET,
    PART,
    Cluster,
    MiB,
    Node,
    create,
    offset_of,
    open_patch,
    patch,
    resume,
    session_id_of,
    wait_until,
)
from .conftest import payload

pytestmark = pytest.mark.slow


def _restart_and_resume(nodes: Cluster, url: str, data: bytes, expected_offset: int) -> None:
    node = nodes["node-f"]
    if not node.running:
        node.start()
    node.wait_ready()
    session_id = session_id_of(url)
    assert nodes.assert_consistent(session_id, node) == expected_offset
    response = resume(url, data)
    assert response.status_code == 204, response.text
    nodes.assert_complete(session_id, data)


def test_kill_while_reading_the_body_keeps_the_last_commit(nodes: Cluster) -> None:
    node = nodes["node-f"]
    data = payload(2 * PART + 3 * MiB, seed=11)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    assert patch(url, data[:MiB], 0).status_code == 204
    tail_before = node.tail_path(session_id).read_bytes()

    request = open_patch(url, MiB, len(data) - MiB)
    request.send(data[MiB : 3 * MiB])
    wait_until(lambda: nodes.row(session_id)["lease_token"], 30, "the PATCH to take the lease")
    node.kill()
    request.close()

    assert nodes.row(session_id)["offset"] == MiB
    assert node.tail_path(session_id).read_bytes()[:MiB] == tail_before
    _restart_and_resume(nodes, url, data, MiB)


@pytest.mark.parametrize("killed", ["node", "workers"])
def test_kill_after_a_part_commit_resumes_from_the_part_boundary(nodes: Cluster, killed: str) -> None:
    """``workers`` is the OOM killer's way: the workers die, the master keeps
    the port and starts new ones; the upload resumes on the same node once
    the dead request's lease runs out."""
    node = nodes["node-f"]
    data = payload(4 * PART + 3 * MiB, seed=12)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)

    # Parts upload while the next is read and commit in order: once a third
    # part is read, the first is committed at the latest.
    request = open_patch(url, 0, len(data))
    request.send(data[: 3 * PART + MiB])
    wait_until(lambda: nodes.row(session_id)["parts"], 60, "the first part to be committed")
    if killed == "node":
        node.kill()
    else:
        pids = node.kill_workers()
        assert pids and node.running
    request.close()

    row = nodes.row(session_id)
    assert row["parts"] and row["offset"] == len(row["parts"]) * PART
    if killed == "workers":
        wait_until(
            lambda: set(node.worker_pids()).isdisjoint(pids) and len(node.worker_pids()) == node.workers,
            60,
            "new workers",
        )
    _restart_and_resume(nodes, url, data, row["offset"])


def test_kill_after_a_part_upload_before_its_commit(nodes: Cluster) -> None:
    """S3 stored the part, the app never heard back and died: the row knows
    nothing of the part, so it is uploaded again under the same number."""
    node = nodes["node-f"]
    data = payload(2 * PART + 3 * MiB, seed=13)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)

    nodes.relay.hold_after(PART)
    request = open_patch(url, 0, len(data))
    request.send(data[: PART + MiB])
    nodes.relay.wait_held()
    node.kill()
    nodes.relay.restore()
    request.close()

    row = nodes.row(session_id)
    assert row["parts"] == [] and row["offset"] == 0 and row["upload_id"]
    stored = nodes.s3.list_parts(Bucket=BUCKET, Key=row["key"], UploadId=row["upload_id"]).get("Parts", [])
    assert [(p["PartNumber"], p["Size"]) for p in stored] == [(1, PART)]
    _restart_and_resume(nodes, url, data, 0)


class _TailWatch(threading.Thread):
    """Freeze the node the moment its tail write shows on disk:

    - ``append``: the tail grows past its old size;
    - ``into-part``: the tail file, completed into part 1, has been renamed
      to that part's file and the empty tail's temp file exists (no tail file);
    - ``atomic-replace``: the temp file of the remainder's atomic replace
      exists beside a tail file (the old one, or the empty one into-part left).

    If the write is over (the tail holds the remainder) before a look caught
    it, give up."""

    def __init__(self, node: Node, session_id: str, mode: str) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.tail = node.tail_path(session_id)
        self.mode = mode
        stat = self.tail.stat()
        self.old_size, self.old_inode = stat.st_size, stat.st_ino
        self.temp = re.compile(re.escape(self.tail.name) + r"\.\d+\.tmp")
        self.caught = False

    def run(self) -> None:
        while self.node.running:
            if self._writing():
                self.node.freeze()
                self.caught = True
                return
            if self.mode != "append" and self._replaced():
                return

    def _writing(self) -> bool:
        if self.mode == "append":
            return self.tail.exists() and self.tail.stat().st_size > self.old_size
        before = self._stat()
        # The tail's own temp file, not a part file's (write-behind).
        if not any(self.temp.fullmatch(n) for n in os.listdir(self.tail.parent)):
            return False
        after = self._stat()
        if self.mode == "into-part":
            return after is None
        # One tail file throughout the look: the temp file seen is the
        # remainder's, not that of the empty tail taking the name.
        return before is not None and after is not None and before.st_ino == after.st_ino

    def _replaced(self) -> bool:
        stat = self._stat()
        if stat is None or stat.st_ino == self.old_inode:
            return False
        # The remainder of atomic-replace is never empty; into-part's empty tail is done.
        return self.mode == "into-part" or stat.st_size > 0

    def _stat(self) -> os.stat_result | None:
        try:
            return self.tail.stat()
        except FileNotFoundError:
            return None


@pytest.mark.parametrize("mode", ["append", "into-part", "atomic-replace"])
def test_kill_while_writing_the_tail(nodes: Cluster, mode: str) -> None:
    """The tail write is too quick to aim a kill at from outside: the node is
    frozen (SIGSTOP) the instant the write shows on disk, then killed, so the
    disk and the row are exactly as a crash there leaves them. A watch that
    comes too late lets the PATCH finish and tries again on a new upload."""
    node = nodes["node-f"]
    appended = mode == "append"
    for attempt in range(5):
        data = payload(2 * PART + 3 * MiB, seed=20 * attempt + len(mode))
        url = create(node.files_url, len(data))
        session_id = session_id_of(url)
        assert patch(url, data[:MiB], 0).status_code == 204
        # Append: no part is cut, the new bytes go after the old tail. Into-part:
        # the body ends with part 1, still on its way to S3 as the PATCH ends,
        # so the tail file becomes its part file. Atomic-replace: a part is cut
        # and the remainder replaces the tail through a temp file.
        end = {"append": 4 * MiB, "into-part": PART, "atomic-replace": PART + 4 * MiB}[mode]
        watch = _TailWatch(node, session_id, mode)
        watch.start()
        request = open_patch(url, MiB, end - MiB)
        request.send(data[MiB:end])
        # The watch ends either way: the node frozen, or the replace seen done.
        watch.join(timeout=60)
        if watch.caught:
            break
        response = request.response()
        assert response.status_code == 204
        assert resume(url, data).status_code == 204
        nodes.assert_complete(session_id, data)
    else:
        pytest.fail("no attempt caught the tail write in progress")
    node.kill()
    request.close()

    row = nodes.row(session_id)
    tail = node.tail_path(session_id)
    if appended:
        # Frozen while writing or syncing the new bytes: the offset has not
        # moved yet (or, frozen a moment late, has).
        assert row["parts"] == [] and row["offset"] in (MiB, end), row
    elif mode == "into-part":
        # The row has not counted part 1 (or, frozen a moment late, counts it
        # waiting in its file): either way the bytes are in part 1's file, and
        # the tail file is absent or the empty one. Uncounted, the resume takes
        # the tail back from that file.
        assert row["parts"] == [] and row["offset"] in (MiB, PART), row
        assert node.part_path(session_id, 1).stat().st_size == PART
        assert not tail.exists() or tail.stat().st_size == 0
    else:
        # Part 1 committed, or waiting for S3 in its part file (write-behind):
        # the row counts no byte of the tail file being replaced.
        assert row["offset"] in (PART, end), row
        assert len(row["parts"]) + (row["offset"] - len(row["parts"]) * PART) // PART == 1, row
    _restart_and_resume(nodes, url, data, row["offset"])
    assert not tail.exists() and not node.part_path(session_id, 1).exists()


def test_shared_tail_store_resumes_on_another_node_after_a_kill(nodes: Cluster) -> None:
    """With the tail in S3, a node dying mid-PATCH loses nothing another node needs."""
    s1, s2 = nodes["node-s1"], nodes["node-s2"]
    data = payload(2 * PART + 3 * MiB, seed=19)
    session_id = session_id_of(create(s1.files_url, len(data)))
    assert patch(s1.upload_url(session_id), data[:MiB], 0).status_code == 204
    assert nodes.tail_size(session_id, s1) == MiB

    request = open_patch(s1.upload_url(session_id), MiB, len(data) - MiB)
    request.send(data[MiB : 3 * MiB])
    wait_until(lambda: nodes.row(session_id)["lease_token"], 30, "the PATCH to take the lease")
    s1.kill()
    request.close()

    assert nodes.assert_consistent(session_id, s2) == MiB
    response = resume(s2.upload_url(session_id), data)
    assert response.status_code == 204, response.text
    nodes.assert_complete(session_id, data)


def test_s3_cut_mid_patch_fails_with_5xx_or_keeps_the_parts_and_resumes(nodes: Cluster) -> None:
    node = nodes["node-a"]
    data = payload(3 * PART + MiB, seed=16)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    assert patch(url, data[:MiB], 0).status_code == 204

    # The second PATCH cuts two parts; S3 vanishes while the second one is on its way.
    nodes.relay.cut_after(PART + 2 * MiB)
    answer = patch(url, data[MiB : 2 * PART], MiB)

    # With write-behind the answer may come before the cut does.
    wait_until(lambda: nodes.relay.cuts >= 1, 60, "S3 to be cut")
    if answer.status_code == 204:
        # Answered before S3 failed (write-behind): both parts wait in part
        # files, and the row counts them.
        assert int(answer.headers["Upload-Offset"]) == 2 * PART
        assert nodes.assert_consistent(session_id, node) == 2 * PART
    else:
        assert 500 <= answer.status_code < 600 and "storage_error" in answer.text
        # Parts upload two at a time: the first may or may not have been committed.
        assert nodes.assert_consistent(session_id, node) in (MiB, PART)
    nodes.relay.restore()
    assert resume(url, data).status_code == 204
    nodes.assert_complete(session_id, data)


def test_s3_black_holed_mid_patch_fails_with_5xx_and_resumes(nodes: Cluster) -> None:
    """S3 takes the requests but never answers (no reset, no error): the PATCH
    gives up after the client's read timeout and retries, answers 5xx with a
    reason, and the row still describes what was committed before. With
    write-behind the PATCH answers first, its part safe in a part file, and
    the next request sends the part again once the silent upload gives up."""
    node = nodes["node-f"]
    data = payload(2 * PART + MiB, seed=19)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    assert patch(url, data[:MiB], 0).status_code == 204

    nodes.relay.hold_after(0)
    answer = patch(url, data[MiB : PART + 2 * MiB], MiB)

    assert nodes.relay.wait_held() > 0
    row = nodes.row(session_id)
    if answer.status_code == 204:
        # Write-behind: answered with part 1 in its part file, S3 still silent.
        assert row["parts"] == [] and row["offset"] == PART + 2 * MiB
        offset = PART + 2 * MiB
    else:
        assert 500 <= answer.status_code < 600 and "storage_error" in answer.text, answer.text
        # S3 may hold the part; the app never heard of it, so the row does not either.
        assert row["parts"] == [] and row["offset"] == MiB
        offset = MiB
    nodes.relay.restore()
    assert nodes.assert_consistent(session_id, node) == offset
    # The resume sends part 1 again once the silent upload gives up.
    response = resume(url, data)
    assert response.status_code == 204, response.text
    nodes.assert_complete(session_id, data)


def test_s3_unreachable_before_the_multipart_upload_exists(nodes: Cluster) -> None:
    node = nodes["node-a"]
    data = payload(PART + MiB, seed=17)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)

    nodes.relay.cut()
    failed = patch(url, data[:MiB], 0)

    assert 500 <= failed.status_code < 600 and "storage_error" in failed.text
    assert nodes.assert_consistent(session_id, node) == 0
    nodes.relay.restore()
    assert resume(url, data).status_code == 204
    nodes.assert_complete(session_id, data)


def test_s3_cut_at_completion_leaves_an_upload_a_client_can_finish(nodes: Cluster) -> None:
    """Every byte is in, CompleteMultipartUpload never reaches S3. A client
    that resumes by the protocol (HEAD, then send what is missing) must end
    with the object."""
    node = nodes["node-a"]
    data = payload(PART + 2 * MiB, seed=18)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    assert patch(url, data[: PART + MiB], 0).status_code == 204

    nodes.relay.cut_on(rb"POST [^ ]*\?uploadId=")
    failed = patch(url, data[PART + MiB :], PART + MiB)
    assert 500 <= failed.status_code < 600 and "storage_error" in failed.text
    nodes.relay.restore()

    offset = offset_of(url)
    if offset < len(data):
        assert resume(url, data).status_code == 204
    nodes.assert_complete(session_id, data)


@pytest.mark.parametrize("declared", [6 * MiB, 2 * PART + 4 * MiB])
def test_client_disconnect_mid_body_keeps_what_arrived(nodes: Cluster, declared: int) -> None:
    node = nodes["node-a"]
    data = payload(3 * PART, seed=declared)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)

    request = open_patch(url, 0, declared)
    request.send(data[: declared // 2])
    request.close()

    def settled() -> bool:
        row = nodes.row(session_id)
        return bool(row["offset"]) and not row["lease_token"]

    wait_until(settled, 60, "the server to keep what arrived")
    offset = nodes.assert_consistent(session_id, node)
    assert offset == declared // 2
    assert resume(url, data).status_code == 204
    nodes.assert_complete(session_id, data)


# -- write-behind: parts still on their way to S3 when the PATCH answered ----------------


def _answered_with_parts_on_their_way(nodes: Cluster, data: bytes, sent: int) -> tuple[str, str]:
    """A PATCH of ``sent`` bytes answered while S3 holds its answers to the
    parts it cut: the row counts them, their bytes only in part files."""
    node = nodes["node-f"]
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    # The multipart upload is created first; the part uploads then wait for answers.
    assert patch(url, data[:MiB], 0).status_code == 204
    nodes.relay.hold_after(MiB)
    response = patch(url, data[MiB:sent], MiB)
    assert response.status_code == 204, response.text
    assert int(response.headers["Upload-Offset"]) == sent
    row = nodes.row(session_id)
    assert row["parts"] == [] and row["offset"] == sent, row
    for number in range(1, sent // PART + 1):
        assert node.part_path(session_id, number).read_bytes() == data[(number - 1) * PART : number * PART]
    return url, session_id


def test_kill_while_parts_are_on_their_way_resumes_byte_exact_on_the_same_node(nodes: Cluster) -> None:
    node = nodes["node-f"]
    data = payload(3 * PART + 3 * MiB, seed=31)
    url, session_id = _answered_with_parts_on_their_way(nodes, data, 2 * PART + MiB)
    node.kill()
    nodes.relay.restore()
    # The restarted node finds no upload running for the parts: it sends them
    # from their files, then the rest.
    _restart_and_resume(nodes, url, data, 2 * PART + MiB)
    assert not node.part_path(session_id, 1).exists() and not node.part_path(session_id, 2).exists()


def test_kill_while_the_next_request_flushes_the_parts_resumes_byte_exact(nodes: Cluster) -> None:
    """The next PATCH is sending the owed parts from their files (S3 holds
    its answers again) when the node dies: the row still counts them, their
    files are still there, and the resume sends them once more."""
    node = nodes["node-f"]
    data = payload(3 * PART + 3 * MiB, seed=32)
    url, session_id = _answered_with_parts_on_their_way(nodes, data, PART + MiB)
    node.kill()
    nodes.relay.restore()
    node.start()
    node.wait_ready()
    nodes.relay.hold_after(MiB)
    request = open_patch(url, PART + MiB, len(data) - PART - MiB)
    request.send(data[PART + MiB : 2 * PART])
    nodes.relay.wait_held()
    node.kill()
    nodes.relay.restore()
    request.close()
    row = nodes.row(session_id)
    assert row["parts"] == [] and row["offset"] == PART + MiB, row
    _restart_and_resume(nodes, url, data, PART + MiB)


def test_parts_on_their_way_with_the_upload_folder_gone_fail_loudly(nodes: Cluster) -> None:
    node = nodes["node-f"]
    data = payload(2 * PART + MiB, seed=33)
    url, session_id = _answered_with_parts_on_their_way(nodes, data, PART + MiB)
    node.kill()
    nodes.relay.restore()
    shutil.rmtree(node.tail_root)
    node.start()
    node.wait_ready()
    response = patch(url, data[PART + MiB :], PART + MiB)
    assert response.status_code == 503 and "tus_tail_missing" in response.text
    row = nodes.row(session_id)
    assert row["offset"] == PART + MiB and row["state"] == "receiving" and row["parts"] == [], row
