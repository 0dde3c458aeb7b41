"""One real ``scoperouter demo`` run shared by the test modules that read it (the CLI's JSON
contract in tests/nba, the execution log it writes in tests/execution_log): a whole demo
day takes about 15 s idle, so it runs once per session (the ``demo_run`` fixture).

Likewise the demo's season with a short history and its date-level run, every run recorded
(``short_demo_day``): about 6 s, read by tests/nba/test_nba_metrics.py (the audited metrics)
and tests/execution_log/test_run_history.py (the run history it becomes). Read only: every
run copies the overnight warehouse."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

import scoperouter.examples.nba.demo as demo_mod
from scoperouter.cli import main
from scoperouter.examples.nba.demo import DemoResult
from scoperouter.examples.nba.harness import GameDay, Job, ModeStats, prepare, run_date_level
from scoperouter.examples.nba.season import DEFAULT_GAME_DATE, generate_season, relation_rows
from scoperouter.examples.nba.warehouse import Warehouse
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.relations import InMemoryRelations


@dataclass
class DemoRun:
    rc: int
    out: dict[str, Any]
    result: DemoResult
    html: Path
    cwd: Path  # where it ran: its execution log is at the default path under it


def run_demo(cwd: Path) -> DemoRun:
    """``scoperouter demo --json --html --export-events`` in ``cwd`` (no ./routes.yaml: the
    packaged registry is used), the result object captured on the way."""
    captured: list[DemoResult] = []
    real = demo_mod.run_demo

    def spy(*args: Any, **kwargs: Any) -> DemoResult:
        res = real(*args, **kwargs)
        captured.append(res)
        return res

    html = cwd / "demo.html"
    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setattr(demo_mod, "run_demo", spy)
        with contextlib.redirect_stdout(buf):
            rc = main(
                [
                    "demo",
                    "--json",
                    "--html",
                    str(html),
                    "--export-events",
                    str(cwd / "events.jsonl"),
                ]
            )
    return DemoRun(rc, json.loads(buf.getvalue()), captured[0], html, cwd)


SHORT_DEMO_SEED = 2025  # the demo's season
SHORT_HISTORY_DAYS = 8  # as tests/nba/nba_support.py's short seasons


@dataclass(frozen=True)
class RecordedDay:
    """A game day, its date-level run and every run of it: (job, duration, rows)."""

    day: GameDay
    baseline: tuple[ModeStats, Warehouse]
    date_runs: tuple[tuple[Job, float, int], ...]


def without_registry(rec: RecordedDay) -> RecordedDay:
    """``rec`` with its day's registry left out, to be pickled (a compiled registry holds
    read-only mappings pickle refuses); :func:`with_registry` puts it back."""
    return replace(rec, day=replace(rec.day, registry=cast(CompiledRegistry, None)))


def with_registry(rec: RecordedDay, routes: Path) -> RecordedDay:
    """``rec`` with ``routes``' registry compiled again (what :func:`short_demo_day` used)."""
    reg = load_config(routes, with_relations=False).registry
    return replace(rec, day=replace(rec.day, registry=reg))


def short_demo_day(routes: Path) -> RecordedDay:
    """The demo's season (seed 2025) with 8 days of history before the default game day,
    with ``routes``' registry and the season's relations, run date level."""
    reg = load_config(routes, with_relations=False).registry
    season = generate_season(
        SHORT_DEMO_SEED,
        DEFAULT_GAME_DATE,
        season_start=DEFAULT_GAME_DATE - timedelta(days=SHORT_HISTORY_DAYS),
    )
    inverses = {n: r.base for n, r in reg.relations.items() if r.inverse}
    types = {n: (r.from_type, r.to_type) for n, r in reg.relations.items()}
    day = prepare(
        season, reg, InMemoryRelations(relation_rows(season), inverses=inverses, types=types)
    )
    runs: list[tuple[Job, float, int]] = []

    def on_run(job: Job, now: float, dur: float, rows: int, changed: frozenset[str]) -> None:
        runs.append((job, dur, rows))

    baseline = run_date_level(day, on_run=on_run)
    return RecordedDay(day, baseline, tuple(runs))
