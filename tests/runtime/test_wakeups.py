"""The loop's helper threads do not preempt the loop when it wakes them: the outbox's sync
thread runs as ``SCHED_BATCH`` (Linux); elsewhere, or when refused, nothing changes."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from runtime_support import date_trigger

from scoperouter.runtime import wakeups
from scoperouter.runtime.outbox import OutboxSink

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_BATCH: Linux")


def _policy_in_thread() -> tuple[bool, int]:
    """(no_wakeup_preemption()'s answer, the policy after it) in a fresh thread."""
    got: list[tuple[bool, int]] = []
    t = threading.Thread(
        target=lambda: got.append((wakeups.no_wakeup_preemption(), os.sched_getscheduler(0)))
    )
    t.start()
    t.join()
    return got[0]


@linux
def test_only_the_calling_thread_changes() -> None:
    """The calling thread becomes SCHED_BATCH; the thread that started it keeps its policy."""
    before = os.sched_getscheduler(0)
    assert _policy_in_thread() == (True, os.SCHED_BATCH)
    assert os.sched_getscheduler(0) == before


@linux
@pytest.mark.parametrize("how", ["no_policy", "refused"])
def test_nothing_changes_without_the_policy(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """No SCHED_BATCH on the platform, or the call refused: False, the policy unchanged."""
    before = os.sched_getscheduler(0)
    if how == "no_policy":
        monkeypatch.delattr(os, "SCHED_BATCH")
    else:

        def refuse(*_args: object) -> None:
            raise PermissionError("refused")

        monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert _policy_in_thread() == (False, before)


@linux
async def test_outbox_thread_runs_without_wakeup_preemption(tmp_path: Path) -> None:
    """The fsync outbox's own thread (started by its first flush) runs as SCHED_BATCH."""
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=True)
    try:
        await sink.send_batch([(date_trigger(1), None)])
        assert sink._thread is not None and sink._thread.native_id is not None
        assert os.sched_getscheduler(sink._thread.native_id) == os.SCHED_BATCH
    finally:
        await sink.close()
