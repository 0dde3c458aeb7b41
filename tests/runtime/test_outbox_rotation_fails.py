"""A failing outbox rotation (``os.rename`` refused: an unwritable or read-only directory)
is housekeeping, not a failed send: each send whose line is written (with ``fsync``: and
synced, in the file it is in) is done; the failure is logged at ERROR once per streak and
counted (``rotation_failures``), and the rotation is tried again ``ROTATE_RETRY_S`` later,
not at every send."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from runtime_support import date_trigger
from test_outbox import lines

import scoperouter.runtime.outbox as outbox_mod
from scoperouter.runtime.outbox import ROTATE_RETRY_S, OutboxSink
from scoperouter.runtime.payloads import trigger_bytes

trigger = date_trigger


@pytest.mark.parametrize("fsync", [False, True])
async def test_sends_are_done_while_the_rotation_fails_and_it_is_retried_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fsync: bool
) -> None:
    """Every send succeeds, each line written once; one ERROR; the rotation retried later."""
    now = [1000.0]
    monkeypatch.setattr(outbox_mod, "_monotonic", lambda: now[0])
    real_rename = os.rename

    def deny(a: object, b: object) -> None:
        raise PermissionError(13, "Permission denied", a)

    line = len(trigger_bytes(trigger(0))) + 1
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=fsync, max_bytes=2 * line, keep=3)
    monkeypatch.setattr(os, "rename", deny)
    caplog.set_level(logging.INFO, logger="scoperouter.runtime")
    for i in range(6):  # each would rotate: the first tries, the rest wait for the retry
        await sink.send(trigger(i), message_id="m")
    assert sink.rotation_failures == 1
    now[0] += ROTATE_RETRY_S  # retried at the next send, failing again: the same streak
    await sink.send(trigger(6), message_id="m")
    assert sink.rotation_failures == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "rotat" in errors[0].getMessage()
    assert not list(tmp_path.glob("outbox.jsonl.*"))
    monkeypatch.setattr(os, "rename", real_rename)  # the directory writable again
    now[0] += ROTATE_RETRY_S
    await sink.send(trigger(7), message_id="m")
    await sink.send(trigger(8), message_id="m")
    await sink.close()
    assert sink.rotations >= 1 and (tmp_path / "outbox.jsonl.1").exists()
    assert lines(tmp_path) == [trigger(i).trigger_id for i in range(9)]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
