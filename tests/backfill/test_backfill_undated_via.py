"""A backfill and the router agree on a games lookback whose ``via`` relation has undated
rows: for the same relation data, every date the router's date-scope decisions reach from
the re-run dates is a date the backfill runs the processor on, and the backfill's last date
is the router's last one (never fewer dates, and the same rule: an undated row holds on
every date, yet says nothing about who occurred on a date without dated rows)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scoperouter.backfill.plan import Request, plan_backfill
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import InMemoryRelations, Row
from scoperouter.router.planner import plan

D = date(2025, 11, 3)
AS_OF = D + timedelta(days=20)
N = 2  # games lookback


def d(n: int) -> date:
    return D + timedelta(days=n)


def _registry() -> CompiledRegistry:
    doc = {
        "version": 1,
        "entities": {"player": {}, "game": {}},
        "relations": {"player_games": {"from": "player", "to": "game"}},
        "processors": {
            "u": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}],
                  "publishes": "an.u"},
            "p": {"phase": 4, "granularity": "player", "inputs": [{"source": "an.u"}],
                  "lookback": {"games": N, "via": "player_games"}},
        },
    }  # fmt: skip
    return compile_registry(RoutesSpec.model_validate(doc))


REG = _registry()
# p1 plays every other day from D; px's row is undated: it holds on every date
EVERY_OTHER_DAY: list[Row] = [(d(2 * k), "p1", f"G{k}") for k in range(8)]
UNDATED: list[Row] = [(None, "px", "GX")]


def _router_dates(rel: InMemoryRelations, start: date, end: date) -> set[date]:
    """Every date the router runs ``p`` on for a date-scope completion of ``u`` on each
    date of [start, end] (the dates a backfill of u re-makes)."""
    out: set[date] = set()
    day = start
    while day <= end:
        ev = normalize_event(
            {"event_id": f"e-{day}", "source": "an.u", "game_date": day.isoformat()}, REG
        )
        [dec] = [x for x in plan(REG, rel, ev, AS_OF) if x.processor == "p"]
        out.update(dec.dates)
        day += timedelta(days=1)
    return out


@pytest.mark.parametrize(
    ("rows", "start", "end"),
    [
        # a re-run date with dated rows: px's next N dates are within p1's next N games
        pytest.param(EVERY_OTHER_DAY + UNDATED, d(0), d(0), id="dated-and-undated"),
        # d(1) has no dated row: who played then is unknown, whatever px's undated row says
        pytest.param(EVERY_OTHER_DAY + UNDATED, d(1), d(1), id="only-undated-rows-on-the-date"),
        pytest.param(EVERY_OTHER_DAY + UNDATED, d(0), d(3), id="range-across-both"),
        # a via relation with undated rows only: no date is known
        pytest.param(UNDATED, d(0), d(1), id="undated-only-relation"),
        pytest.param(EVERY_OTHER_DAY, d(1), d(1), id="no-undated-rows"),
    ],
)
def test_backfill_runs_every_date_the_router_reaches(
    rows: list[Row], start: date, end: date
) -> None:
    """The backfill runs p on every date the router would, up to the same last date."""
    rel = InMemoryRelations({"player_games": rows}, types={"player_games": ("player", "game")})
    bp = plan_backfill(REG, Request(start, end, processors=("u", "p")), as_of=AS_OF, relations=rel)
    backfill = {r.day for r in bp.runs if r.processor == "p"}
    router = _router_dates(rel, start, end)
    assert router <= backfill, sorted(router - backfill)
    assert bp.last_day["p"] == max(router), (bp.last_day["p"], max(router))
