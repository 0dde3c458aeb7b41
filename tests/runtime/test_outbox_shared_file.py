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


@pytest.mark.xfail(
    strict=True,
    reason="open bug: a second writer keeps its descriptor on the renamed file (no shared lock)",
)
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
