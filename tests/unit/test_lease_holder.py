"""Who holds a lease, read back from its holder id (the test of a holder
whose process ended starts a process: tests/test_lease_holder.py)."""

from __future__ import annotations

from typing import Any

from rindle_tus.holders import describe_holder, holder_gone, holder_id


def test_a_running_holder_is_not_gone(settings: Any) -> None:
    settings.RINDLE_TUS_NODE_NAME = "web 1"  # a node name may hold spaces
    holder = holder_id()
    assert not holder_gone(holder)
    assert describe_holder(holder).startswith("web 1, process ")


def test_a_holder_on_another_machine_is_never_taken_for_gone() -> None:
    node, _machine, pid, start = holder_id().rsplit(" ", 3)
    assert not holder_gone(f"{node} another-boot/pid:[1] {pid} {start}")
    assert not holder_gone(f"{node} another-boot/pid:[1] 999999999 1")
    assert not holder_gone("garbage")
