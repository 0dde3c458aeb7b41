"""A games lookback over a ``via`` relation that has undated rows (they hold on every date)."""

from __future__ import annotations

from datetime import date, timedelta

from planner_support import D, event, registry_from, relations_for

from scoperouter.router.planner import plan


def d(n: int) -> date:
    return D + timedelta(days=n)


REG = registry_from(
    {
        "version": 1,
        "entities": {"player": {}, "game": {}},
        "relations": {"player_games": {"from": "player", "to": "game"}},
        "processors": {
            "p_games": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "raw.a"}],
                "lookback": {"games": 2, "via": "player_games"},
            },
            "p_date_games": {
                "phase": 4,
                "granularity": "date",
                "inputs": [{"source": "raw.a"}],
                "lookback": {"games": 2, "via": "player_games"},
            },
        },
    }
)
# px's row has no date: it holds on every date (SPEC), so px plays on D+1 and D+2 too
ROWS = {
    "player_games": [
        (None, "px", "GX"),
        (D, "p1", "G1"),
        (d(1), "p1", "G2"),
        (d(2), "p1", "G3"),
    ]
}


def test_undated_via_row_counts_as_an_occurrence_on_every_date() -> None:
    """An entity whose via row is undated has its next N games on D+1..D+N (no date lost)."""
    rel = relations_for(REG, ROWS)
    ev = event(REG, source="raw.a", affected_entities={"players": ["px"]})
    [dec] = [x for x in plan(REG, rel, ev, d(5)) if x.processor == "p_games"]
    assert dec.scope == "entities"
    assert {d(1), d(2)} <= set(dec.dates), dec.dates


def test_undated_via_row_counts_at_date_scope() -> None:
    """At date scope, an entity with an undated via row holds on D, so its next N dates are added."""
    rows = [(None, "px", "GX"), (D, "p1", "G1"), (d(4), "p1", "G2"), (d(5), "p1", "G3")]
    rows += [(d(1), "p2", "G4"), (d(2), "p2", "G5"), (d(3), "p2", "G6")]
    rel = relations_for(REG, {"player_games": rows})
    ev = event(REG, source="raw.a")
    [dec] = [x for x in plan(REG, rel, ev, d(9)) if x.processor == "p_date_games"]
    assert {d(1), d(2)} <= set(dec.dates), dec.dates


def test_undated_rows_do_not_make_a_date_without_dated_rows_known() -> None:
    """A date with no dated via row is unknown (relation data missing), undated rows or not:
    a date-scope lookback from it reaches every date up to as_of, never only D+1..D+N."""
    # p1 may have played on D (its row not loaded yet): its next 2 games are D+4 and D+6
    rows = [(None, "px", "GX"), (d(-2), "p1", "G0"), (d(4), "p1", "G2"), (d(6), "p1", "G3")]
    rel = relations_for(REG, {"player_games": rows})
    ev = event(REG, source="raw.a")
    [dec] = [x for x in plan(REG, rel, ev, d(9)) if x.processor == "p_date_games"]
    assert dec.dates == tuple(d(k) for k in range(10)), dec.dates
