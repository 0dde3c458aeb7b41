"""The relation data timestamps on /metrics: one gauge per relation file (a roster that
stopped updating shows, however fresh the schedule), the newest of them kept as
``scoperouter_relations_loaded_timestamp_seconds``, and both read the CSVs in use -- also
with a ready_file that is absent -- and never a file replaced after it was read."""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

import pytest
from reload_support import recording_router, small_registry

from scoperouter.commands.serve import _relations_fingerprints as _serve_fingerprints
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.reload import RelationReloader

DAY_S = 86_400
NOW = 1_763_500_000  # 2025-11-18T21:06:40Z: file mtimes set from it, never the clock


def file_stamp(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(
        "scoperouter_relation_file_timestamp_seconds", {"file": name}
    )


def newest_stamp(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("scoperouter_relations_loaded_timestamp_seconds")


def age(path: Path, seconds: int) -> None:
    os.utime(path, (seconds, seconds))


@pytest.mark.parametrize("ready_file", [None, "_READY"], ids=["csvs_watched", "ready_file"])
async def test_each_relation_file_has_a_timestamp_gauge(
    tmp_path: Path, ready_file: str | None
) -> None:
    """A roster 10 days old next to a fresh schedule: its own gauge says 10 days (the alert
    on the oldest file fires), the newest-file gauge says fresh; after a reload of a newer
    roster both follow. With a ready_file (absent here) they read the CSVs in use, never 0."""
    rel = tmp_path / "rel"
    cfg = load_config(small_registry(tmp_path, ready_file=ready_file))
    age(rel / "team_players.csv", NOW - 10 * DAY_S)
    age(rel / "game_teams.csv", NOW)
    router, _ = recording_router()
    metrics = Metrics()
    reloader = RelationReloader(cfg.registry, router, metrics, interval_s=0.0)
    await reloader.start()
    try:
        assert file_stamp(metrics, "team_players.csv") == NOW - 10 * DAY_S
        assert file_stamp(metrics, "game_teams.csv") == NOW
        assert newest_stamp(metrics) == NOW
        age(rel / "team_players.csv", NOW + 60)
        assert await reloader.reload()
        assert file_stamp(metrics, "team_players.csv") == NOW + 60
        assert newest_stamp(metrics) == NOW + 60
    finally:
        await reloader.stop()


def test_timestamp_gauge_is_nan_before_relation_data_is_loaded() -> None:
    """Before any relation data is loaded (or with none in the registry) the newest-file gauge
    is NaN, not 0: `time() - gauge > 2 * 86400` must not fire on a daemon just started."""
    stamp = newest_stamp(Metrics())
    assert stamp is not None and math.isnan(stamp)


@pytest.mark.parametrize("ready_file", [None, "_READY"], ids=["broken_replacement", "ready_file"])
async def test_a_file_replaced_during_start_up_is_not_shown_as_loaded(
    tmp_path: Path, ready_file: str | None
) -> None:
    """A roster replaced while serve starts -- without touching the ready file, or broken so
    that the reload it asks for fails -- keeps its gauge at the file that was read (the
    stale-data alert can fire), not the one on disk that is not in use."""
    cfg_path = small_registry(tmp_path, ready_file=ready_file)
    rel = tmp_path / "rel"
    if ready_file:
        (rel / ready_file).write_text("", encoding="utf-8")
    for f in rel.glob("*.csv"):
        age(f, NOW - DAY_S)
    before = _serve_fingerprints(str(cfg_path))  # serve: stat, then read
    assert before is not None
    cfg = load_config(cfg_path)
    tmp = rel / "team_players.csv.tmp"  # the job replaces the roster meanwhile
    tmp.write_text("date,from,to\n,LAL,p5\n" + ("" if ready_file else "not-a-date,LAL,x\n"))
    age(tmp, NOW)
    tmp.rename(rel / "team_players.csv")
    router, got = recording_router()
    metrics = Metrics()
    watched, read = before
    reloader = RelationReloader(
        cfg.registry, router, metrics, interval_s=0.0, settle_s=0.0, fingerprint=watched, read=read
    )
    await reloader.start()
    try:
        await asyncio.gather(*reloader._requests)
        assert got == []
        assert file_stamp(metrics, "team_players.csv") == NOW - DAY_S
        assert newest_stamp(metrics) == NOW - DAY_S
    finally:
        await reloader.stop()
