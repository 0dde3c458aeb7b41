"""An event with ``game_date`` and also ``start_date``/``end_date`` (an extension of SPEC,
which calls only a range without ``game_date`` a backfill): its decision covers its
``game_date`` as today (with its lookback and ``ahead`` dates) and every other date of the
range as a backfill routes it (no lookback, no as-of cap, the ``ahead`` days after the
range's end); one decision has one scope, so it is the full date (reason ``backfill``). A
range of the game date alone (a trigger's echo) routes as the game date alone."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from planner_support import NBA_RELATIONS, NBA_ROWS, D, event, registry_from, relations_for

from scoperouter.cli import main
from scoperouter.router.planner import plan

REPO = Path(__file__).resolve().parents[2]


def _day(k: int) -> date:
    return D + timedelta(days=k)


def _days(a: int, b: int) -> tuple[date, ...]:
    return tuple(_day(k) for k in range(a, b + 1))


def _doc(granularity: str, lookback: dict[str, Any] | None = None, ahead: int = 0) -> Any:
    inp: dict[str, Any] = {"source": "s.x", "fields": ["points"]}
    if ahead:
        inp["ahead"] = {"days": ahead}
    proc: dict[str, Any] = {"phase": 3, "granularity": granularity, "inputs": [inp]}
    if lookback:
        proc["lookback"] = lookback
    return {"version": 1, **NBA_RELATIONS, "processors": {"p": proc}}


PLAYERS = {"affected_entities": {"players": ["lebronjames"]}}
CASES = [
    # (name, granularity, lookback, ahead, range (day offsets), extra fields, as_of offset,
    #  expected (action, scope, reason, entity ids, dates))
    ("date_range_ending_on_game_date", "date", None, 0, (-2, 0), {}, 6,
     ("run", "date", "backfill", None, _days(-2, 0))),
    ("entity_event_widened_to_full_date", "player", None, 0, (-2, 0), PLAYERS, 6,
     ("run", "date", "backfill", None, _days(-2, 0))),
    ("range_apart_from_game_date", "player", None, 0, (-5, -4), PLAYERS, 6,
     ("run", "date", "backfill", None, (_day(-5), _day(-4), D))),
    ("range_past_as_of_is_not_capped", "date", None, 0, (0, 3), {}, 1,
     ("run", "date", "backfill", None, _days(0, 3))),
    ("game_dates_lookback_kept", "player", {"days": 2}, 0, (-2, -1), PLAYERS, 6,
     ("run", "date", "backfill", None, _days(-2, 2))),
    ("ahead_reaches_past_range_end", "date", None, 1, (-3, -2), {}, 6,
     ("run", "date", "backfill", None, (*_days(-3, -1), *_days(0, 1)))),
    ("range_of_game_date_alone_unchanged", "player", None, 0, (0, 0), PLAYERS, 6,
     ("run", "entities", "entity_scope", ("lebronjames",), (D,))),
    ("failed_still_skips", "date", None, 0, (-2, 0), {"status": "failed"}, 6,
     ("skip", None, "upstream_failed", None, ())),
    ("irrelevant_fields_still_skip", "date", None, 0, (-2, 0), {"changed_fields": ["x"]}, 6,
     ("skip", None, "irrelevant_fields", None, ())),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "granularity", "lookback", "ahead", "span", "extra", "as_of", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_game_date_with_a_range(
    name: str,
    granularity: str,
    lookback: dict[str, Any] | None,
    ahead: int,
    span: tuple[int, int],
    extra: dict[str, Any],
    as_of: int,
    expected: tuple[Any, ...],
) -> None:
    """Every date of the range is run, and the game date as it would be alone."""
    reg = registry_from(_doc(granularity, lookback, ahead))
    ev = event(
        reg,
        source="s.x",
        start_date=_day(span[0]).isoformat(),
        end_date=_day(span[1]).isoformat(),
        game_date=D.isoformat(),
        **extra,
    )
    (dec,) = plan(reg, relations_for(reg, NBA_ROWS), ev, _day(as_of))
    assert (dec.action, dec.scope, dec.reason, dec.entity_ids, dec.dates) == expected


def test_explain_shows_the_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """explain's header names the game date and the range; its decisions cover the range."""
    f = tmp_path / "event.json"
    f.write_text(
        '{"event_id": "e", "source": "nbac_injury_report", "game_date": "2025-11-19",'
        ' "start_date": "2025-11-17", "end_date": "2025-11-19"}'
    )
    cfg = str(REPO / "routes.yaml")
    assert main(["explain", str(f), "--config", cfg, "--as-of", "2025-11-19"]) == 0
    out = capsys.readouterr().out
    assert "2025-11-19 (range 2025-11-17..2025-11-19)" in out.splitlines()[0]
    assert "2025-11-17" in out and "backfill" in out
