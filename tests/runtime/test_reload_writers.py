"""Relation files read while a writer is at them: a file cut mid-line is refused (old data
kept, ERROR, error counter), and a file replaced with the same size and mtime is still
seen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reload_support import ROSTER, players, recording_router, small_registry

from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.reload import RelationReloader, relation_fingerprint

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


def test_fingerprint_sees_a_file_replaced_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    """A roster replaced atomically by one of the same size whose mtime was kept (cp -p,
    rsync -t, tar x) changes the fingerprint: its inode (and ctime) differ."""
    roster = tmp_path / "team_players.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    st = roster.stat()
    before = relation_fingerprint([roster])
    tmp = tmp_path / "team_players.csv.tmp"
    tmp.write_text(ROSTER.replace("p4", "p9"), encoding="utf-8")
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, roster)
    after = roster.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert relation_fingerprint([roster]) != before
