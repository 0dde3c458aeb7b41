"""A failing group-commit flush of the outbox sink (``fsync``) fails only the sends whose
lines it carried and could not sync: sends queued while it ran wait for the next flush and
succeed (their lines written once, never reported failed and resent), and lines a rotation
inside the failing flush already synced into ``outbox.jsonl.1`` are reported written. A
failed send's line may still be in the file (written, its sync failed): it is sent again,
an at-least-once duplicate."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from runtime_support import date_trigger
from test_outbox import lines

import scoperouter.runtime.outbox as outbox_mod
from scoperouter.runtime.outbox import OutboxSink
from scoperouter.runtime.payloads import trigger_bytes

trigger = date_trigger  # processor 'p'; every id one width, so every line one size


@pytest.mark.parametrize(
    ("error", "raised", "closing"),
    [
        (OSError(5, "EIO"), "DispatchError", False),  # the disk
        (ValueError("a bug"), "ValueError", False),  # anything else
        (OSError(5, "EIO"), "DispatchError", True),  # close() waits for the next flush too
    ],
)
async def test_sends_queued_during_a_failing_flush_are_written_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, raised: str, closing: bool
) -> None:
    """Only the failing flush's send fails; the sends queued meanwhile get the next flush."""
    real, entered, release, calls = outbox_mod._datasync, threading.Event(), threading.Event(), [0]

    def slow_then_failing(fd: int) -> None:
        calls[0] += 1
        if calls[0] == 1:
            entered.set()
            release.wait(5)
            raise error
        real(fd)

    monkeypatch.setattr(outbox_mod, "_datasync", slow_then_failing)
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=True)
    first = asyncio.ensure_future(sink.send(trigger(0), message_id="m"))
    assert await asyncio.to_thread(entered.wait, 5)  # the first flush is syncing
    later = [asyncio.ensure_future(sink.send(trigger(i), message_id="m")) for i in (1, 2)]
    await asyncio.sleep(0.05)
    closed = asyncio.ensure_future(sink.close()) if closing else None
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.wait_for(
        asyncio.gather(first, *later, return_exceptions=True),
        60,  # a liveness bound: a send left waiting never answers
    )
    assert [type(o).__name__ for o in outcomes] == [raised, "NoneType", "NoneType"]
    if closed is not None:
        await closed
    else:
        await sink.send(trigger(0), message_id="m")  # the dispatcher retries the failed send
        await sink.close()
    got = lines(tmp_path)
    assert [got.count(trigger(i).trigger_id) for i in (1, 2)] == [1, 1]
    assert got.count(trigger(0).trigger_id) >= 1  # written by the failed flush too, maybe


# (case, the datasync call that fails, the sends reported written) -- one flush of 5 lines,
# a file per 2 lines: datasync 1 and 2 sync rotated files (lines 0-1, 2-3), 3 the last line
ROTATION_CASES = [
    ("no_failure", None, [0, 1, 2, 3, 4]),
    ("first_rotation_fails", 1, []),
    ("second_rotation_fails", 2, [0, 1]),
    ("last_sync_fails", 3, [0, 1, 2, 3]),
]


@pytest.mark.parametrize(
    ("case", "failing", "written"), ROTATION_CASES, ids=[c[0] for c in ROTATION_CASES]
)
async def test_lines_a_rotation_synced_before_the_flush_failed_are_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    failing: int | None,
    written: list[int],
) -> None:
    """A rotated file's lines synced before the flush failed are reported written, not resent."""
    real, calls = outbox_mod._datasync, [0]

    def flaky(fd: int) -> None:
        calls[0] += 1
        if calls[0] == failing:
            raise OSError(5, "EIO")
        real(fd)

    monkeypatch.setattr(outbox_mod, "_datasync", flaky)
    line = len(trigger_bytes(trigger(0))) + 1
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=True, max_bytes=2 * line, keep=20)
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(sink.send(trigger(i), message_id="m") for i in range(5)), return_exceptions=True
        ),
        60,
    )
    await sink.close()
    assert [i for i, o in enumerate(outcomes) if o is None] == written
    assert all(type(o).__name__ == "DispatchError" for o in outcomes if o is not None)
