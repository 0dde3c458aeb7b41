"""Two writers on one outbox.jsonl (``scoperouter backfill --executor target`` next to
``serve``, both on the state dir's outbox): a line one of them reports written is in a
file the other's rotation keeps, never in one it renamed away or deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_support import date_trigger

from scoperouter.runtime.outbox import OutboxSink
from scoperouter.runtime.payloads import trigger_bytes

trigger = date_trigger  # processor 'p'


def ids(tmp_path: Path) -> set[str]:
    """Every trigger id in the outbox files that exist."""
    return {
        json.loads(line)["trigger_id"]
        for f in tmp_path.glob("outbox.jsonl*")
        for line in f.read_bytes().splitlines()
        if line.strip()
    }


@pytest.mark.parametrize("fsync", [True, False])
async def test_a_line_the_other_writer_reports_written_survives_rotations(
    tmp_path: Path, fsync: bool
) -> None:
    """A line the non-rotating writer wrote after the other rotated is in the current file, not lost."""
    path = tmp_path / "outbox.jsonl"
    line = len(trigger_bytes(trigger(0))) + 1
    serve = OutboxSink(path, fsync=fsync, max_bytes=2 * line, keep=1)  # rotates every 2 lines
    backfill = OutboxSink(path, fsync=fsync)  # never rotates (the backfill command's)
    for i in range(2):
        await serve.send(trigger(i), message_id="m")  # -> outbox.jsonl.1
    await backfill.send(trigger(900), message_id="m")  # reported written
    for i in range(2, 4):
        await serve.send(trigger(i), message_id="m")  # the next rotation
    await serve.close()
    await backfill.close()
    assert serve.rotations == 2
    assert trigger(900).trigger_id in ids(tmp_path)


@pytest.mark.parametrize("fsync", [True, False])
async def test_two_rotating_writers_interleaved_keep_every_line(
    tmp_path: Path, fsync: bool
) -> None:
    """Two writers that both rotate, sends interleaved: every line sent is in the kept
    files once, whole (keep is large enough to hold them all)."""
    path = tmp_path / "outbox.jsonl"
    line = len(trigger_bytes(trigger(0))) + 1
    a = OutboxSink(path, fsync=fsync, max_bytes=3 * line, keep=100)
    b = OutboxSink(path, fsync=fsync, max_bytes=5 * line, keep=100)
    sent = []
    for i in range(40):
        w = a if i % 3 else b
        t = trigger(i)
        await w.send(t, message_id="m")
        sent.append(t.trigger_id)
    await a.close()
    await b.close()
    lines = [
        json.loads(x)["trigger_id"]
        for f in tmp_path.glob("outbox.jsonl*")
        for x in f.read_bytes().splitlines()
    ]
    assert sorted(lines) == sorted(sent)
    # no file past its writer's limit by more than one line (sizes read from the file)
    assert all(f.stat().st_size <= 6 * line for f in tmp_path.glob("outbox.jsonl*"))
