"""The relation data timestamps on /metrics: one gauge per relation file (a roster that
stopped updating shows, however fresh the schedule), the newest of them kept as
``scoperouter_relations_loaded_timestamp_seconds``, and both read the CSVs in use -- also
with a ready_file that is absent."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from reload_support import recording_router, small_registry

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
