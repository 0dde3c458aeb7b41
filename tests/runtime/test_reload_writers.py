"""Relation files read while a writer is at them: a file cut mid-line is refused (old data
kept, ERROR, error counter)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reload_support import players, recording_router, small_registry

from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.reload import RelationReloader

LOGGER = "scoperouter.runtime.reload"


def errors_counted(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value(
        "scoperouter_relation_reloads_total", {"result": "error"}
    )


def logged(caplog: pytest.LogCaptureFixture, level: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == level]


async def test_a_file_cut_mid_line_is_refused_until_its_writer_is_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A roster read while its writer is mid-id (no final newline) is not loaded: the old
    data stays, an ERROR names file:line and the error counter counts it; once the writer
    is done the next reload loads it."""
    cfg = load_config(small_registry(tmp_path))
    router, got = recording_router()
    metrics = Metrics()
    reloader = RelationReloader(cfg.registry, router, metrics, interval_s=0.0)
    await reloader.start()
    roster = tmp_path / "rel" / "team_players.csv"
    roster.write_text("date,from,to\n,LAL,p1\n,LAL,p", encoding="utf-8")  # p2 half written
    try:
        assert not await reloader.reload("changed")
        assert got == [] and errors_counted(metrics) == 1
        [error] = logged(caplog, "ERROR")
        assert f"{roster}:3:" in error and "newline" in error
        roster.write_text("date,from,to\n,LAL,p1\n,LAL,p2\n", encoding="utf-8")
        assert await reloader.reload("changed")
        assert players(got[-1]) == {"p1", "p2"}
    finally:
        await reloader.stop()
