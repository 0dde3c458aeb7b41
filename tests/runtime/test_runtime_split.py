"""The daemon and the snapshot + journal store were split by job (pure moves): every moved
name is still importable from its old module as the very same object, and what the daemon
logs while it runs still comes from the ``scoperouter.runtime.daemon`` logger."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest
from test_heap_freeze import make_daemon

MOVED = [
    ("scoperouter.runtime.daemon", "scoperouter.runtime.daemon_run", "GC_GEN0_THRESHOLD"),
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "SyncMode"),
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "PendingTrigger"),
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "JournalEntry"),
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "DeadLetter"),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_moved_name_is_the_same_object_in_its_old_module(old: str, new: str, name: str) -> None:
    """A moved name imported from its old module is the object its new module defines."""
    moved = getattr(importlib.import_module(new), name)
    assert getattr(importlib.import_module(old), name) is moved
    assert name in importlib.import_module(old).__all__


async def test_running_daemon_logs_as_the_daemon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """stop() logs "stopped" from the scoperouter.runtime.daemon logger (log filters name it)."""
    d = make_daemon(tmp_path)
    await d.start()
    with caplog.at_level(logging.INFO, logger="scoperouter.runtime.daemon"):
        await d.stop()
    stopped = [r for r in caplog.records if r.getMessage() == "stopped"]
    assert [r.name for r in stopped] == ["scoperouter.runtime.daemon"]
