"""A crash can leave outbox.jsonl ending in a torn line (written, never synced); the sink
reopened after it starts its lines on a line of their own, so a delivered trigger's line
always parses, and it keeps every byte it found."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from runtime_support import date_trigger

from scoperouter.runtime.outbox import OutboxSink
from scoperouter.runtime.payloads import trigger_bytes

trigger = date_trigger  # processor 'p'


@pytest.mark.parametrize("fsync", [True, False])
@pytest.mark.parametrize(
    ("before", "torn"),
    [
        (b"", 0),  # a new file
        (b"LINE0\n", 0),  # whole lines only
        (b"LINE0\nLINE1\n", 0),
        (b"LINE0\n" + b'{"trigger_id":"torn","proc', 26),  # a torn last line
        (b'{"trigger_id":"torn"', 20),  # the only line torn
        (b"LINE0\n" + b"x" * 200_000, 200_000),  # a torn line longer than one read
    ],
    ids=["new", "whole", "whole2", "torn", "only-torn", "long-torn"],
)
async def test_reopened_outbox_ends_a_torn_last_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fsync: bool, before: bytes, torn: int
) -> None:
    """Reopened after a crash, the sink ends a torn last line (logged, kept) before its own lines."""
    path = tmp_path / "outbox.jsonl"
    for i in range(2):
        before = before.replace(f"LINE{i}".encode(), trigger_bytes(trigger(100 + i)))
    path.write_bytes(before)
    with caplog.at_level(logging.WARNING, logger="scoperouter.runtime"):
        sink = OutboxSink(path, fsync=fsync)
        await sink.send(trigger(0), message_id="m")
        await sink.send(trigger(1), message_id="m")
        await sink.close()
    data = path.read_bytes()
    assert data.startswith(before)  # nothing it found is lost
    ours = data[len(before) + (1 if torn else 0) :]
    assert data[len(before) : len(before) + 1] == (b"\n" if torn else ours[:1])
    ids = [json.loads(line)["trigger_id"] for line in ours.splitlines()]
    assert ids == [trigger(0).trigger_id, trigger(1).trigger_id]
    assert any("torn" in r.getMessage() for r in caplog.records) == bool(torn)
    if torn:  # the fragment's length, counted
        assert sink.torn_bytes == torn


async def test_a_line_another_writer_completes_meanwhile_is_left_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tail another process finishes writing while the sink opens is neither cut nor split."""
    import scoperouter.runtime.outbox as outbox_mod

    path = tmp_path / "outbox.jsonl"
    theirs = trigger_bytes(trigger(100))
    path.write_bytes(theirs[:30])  # their write in progress
    real = outbox_mod._tail_fragment

    def then_finished(fd: int, chunk: int = 65536) -> int:
        n = real(fd, chunk)
        with path.open("ab") as other:  # the other writer's write completes
            other.write(theirs[30:] + b"\n")
        return n

    monkeypatch.setattr(outbox_mod, "_tail_fragment", then_finished)
    sink = OutboxSink(path, fsync=True)
    await sink.send(trigger(0), message_id="m")
    await sink.close()
    assert sink.torn_bytes == 0
    assert path.read_bytes() == theirs + b"\n" + trigger_bytes(trigger(0)) + b"\n"


@pytest.mark.parametrize("fsync", [True, False])
async def test_a_line_torn_by_another_writer_while_open_is_ended_before_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fsync: bool
) -> None:
    """Another writer of the file (a backfill beside serve) killed mid-write while this sink
    is open: its torn line is ended before this sink's next line, which parses (it was glued
    onto the fragment: a delivered trigger no reader could read)."""
    path = tmp_path / "outbox.jsonl"
    sink = OutboxSink(path, fsync=fsync)
    await sink.send(trigger(0), message_id="m")
    fragment = trigger_bytes(trigger(100))[:30]
    with path.open("ab") as killed:  # the other writer's last write, cut short
        killed.write(fragment)
    with caplog.at_level(logging.WARNING, logger="scoperouter.runtime"):
        await sink.send(trigger(1), message_id="m")
        await sink.send(trigger(2), message_id="m")
    await sink.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == fragment and lines[-1] == b""  # kept whole, ended with a newline
    ids = [json.loads(line)["trigger_id"] for line in (lines[0], *lines[2:-1])]
    assert ids == [trigger(i).trigger_id for i in range(3)]
    assert sink.torn_bytes == len(fragment)
    assert any("torn" in r.getMessage() for r in caplog.records)
