"""Rollout's savings, when no run history measures them, are the report's: saved rows (the
full-date baseline a date's full-date completions measured, else the universe, minus what
the routed run processed) x seconds per entity -- one log, one figure, one go / no-go."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from logsupport import one_processor_registry

from scoperouter.cli import main
from scoperouter.execution_log import open_log
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.engine import RoutingEngine

DAY = date(2025, 11, 19)
REPORT = (
    "report: {shadow_days: 1, wasted_hours_per_week: 0.01, payback_weeks: 1000000,"
    " seconds_per_entity: 1}\n"
)
EVENTS = [  # one player's update (an entity run of 1), then a full-date run
    {"event_id": "e1", "source": "raw.stats", "game_date": "2025-11-19",
     "affected_entities": {"players": ["p1"]}, "produced_at": "2025-11-19T10:00:00Z"},
    {"event_id": "e2", "source": "raw.stats", "game_date": "2025-11-19",
     "produced_at": "2025-11-19T11:00:00Z"},
]  # fmt: skip


def _shadow_log(tmp_path: Path, full_date_records: int | None) -> Path:
    """The log serve --shadow writes for EVENTS (10 rostered players); the full-date run
    reports ``full_date_records`` processed (None: no completion, the universe stands)."""
    cfg = load_config(one_processor_registry(tmp_path, players=10, extra=REPORT))
    path = tmp_path / "log.sqlite"
    log = open_log(path)
    engine = RoutingEngine(cfg.registry)
    for raw in EVENTS:
        ev = parse_event_bytes(json.dumps(raw).encode(), cfg.registry)
        assert ev.produced_at is not None
        now = ev.produced_at.timestamp()
        decisions, fired = engine.receive(ev, cfg.relations, DAY, now)
        log.record_decisions(ev, decisions, ev.produced_at, registry=cfg.registry,
                             relations=cfg.relations, as_of=DAY)  # fmt: skip
        for f in [*fired, *engine.tick(now + 1)]:
            t = f.stamped()
            log.record_dispatch(t, status="shadow", attempts=0, latency_ms=None,
                                dispatched_at=f.fired_at)  # fmt: skip
            if t.scope == "date" and full_date_records is not None:
                log.record_completion("psum", DAY, trigger_id=t.trigger_id,
                                      records_processed=full_date_records, entities_changed=1,
                                      duration_s=0.0)  # fmt: skip
    log.flush()
    log.close()
    return path


def _report(tmp_path: Path, log: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["report", "--config", str(tmp_path / "routes.yaml"), "--log", str(log),
                   "--json"])  # fmt: skip
    assert rc == 0
    got: dict[str, Any] = json.loads(out.getvalue())
    return got


@pytest.mark.parametrize(
    ("full_date_records", "saved_rows"),
    [(5, 5 - 1), (None, 10 - 1)],  # measured full-date size; else the universe of 10
)
def test_rollout_saves_what_the_report_saves(
    tmp_path: Path, full_date_records: int | None, saved_rows: int
) -> None:
    """Rollout's fitted savings equal the report's, from the measured full-date size (it used
    the universe, 9 rows instead of 4: a go the report's own figure would not give)."""
    got = _report(tmp_path, _shadow_log(tmp_path, full_date_records))
    (report,) = got["processors"]
    (rollout,) = got["rollout"]["processors"]
    assert rollout["baseline"] == "fitted_model"
    assert report["saved_hours_per_week"] == rollout["saved_hours_per_week"]
    assert rollout["saved_hours_per_week"] == pytest.approx(saved_rows * 7 / 3600, abs=1e-4)
    assert rollout["decision"] == ("go" if saved_rows * 7 / 3600 > 0.01 else "no-go")
