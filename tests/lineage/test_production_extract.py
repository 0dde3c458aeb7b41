"""Acceptance 2: on a cited extract of production's SQL (data/production, verbatim queries
from najicham/nba-stats-scraper), lineage reports the missing inputs of a hand-written
registry (SPEC section 1's table), among them player_game_summary <- team_offense_game_summary
and upcoming_player_game_context <- nbac_injury_report."""

from __future__ import annotations

import re

import pytest
from lineage_support import DATA, codes, lineage, registry

PROD = DATA / "production"
REG = registry(PROD / "routes.yaml")
A = lineage(REG, PROD)


@pytest.mark.parametrize(
    ("processor", "source"),
    [
        # player_game_summary_processor.py:1167 (usage rate needs team possessions)
        ("player_game_summary", "nba_analytics.team_offense_game_summary"),
        # player_game_summary_processor.py:1020 (the evening boxscore fallback)
        ("player_game_summary", "nba_raw.nbac_player_boxscores"),
        # upcoming_player_game_context/loaders/game_data_loaders.py:458
        ("upcoming_player_game_context", "nba_raw.nbac_injury_report"),
        # game_data_loaders.py:221 (the player's history)
        ("upcoming_player_game_context", "nba_analytics.player_game_summary"),
        # game_data_loaders.py:120 reads the view, not the table the registry names
        ("upcoming_player_game_context", "nba_raw.v_nbac_schedule_latest"),
    ],
)
def test_reports_missing_input(processor: str, source: str) -> None:
    """Each input production's SQL reads and the hand-written registry lacks is a missing_input error."""
    assert (processor, source, None) in codes(A, "missing_input")


def test_findings_are_exactly_these() -> None:
    """No other missing input; fields on the props input miss the prices production reads; the
    extract's dynamic SQL is listed as unresolved, never guessed into a table."""
    assert {s for _p, s, _c in codes(A, "missing_input")} == {
        "nba_analytics.team_offense_game_summary",
        "nba_raw.nbac_player_boxscores",
        "nba_raw.nbac_injury_report",
        "nba_analytics.player_game_summary",
        "nba_raw.v_nbac_schedule_latest",
    }
    assert {c for _p, _s, c in codes(A, "field_not_listed")} == {
        "bookmaker",
        "over_price_american",
        "under_price_american",
    }
    unresolved = [f for f in A.findings if f.code == "unresolved"]
    # 167: the first line of the statement that does not parse (the literal opens at 166)
    assert {f.origin.line for f in unresolved if f.origin} == {10, 164, 167}
    assert any("player_filter_clause" in f.message for f in unresolved)


def test_extract_cites_every_query() -> None:
    """Every query of the extract cites its production path:line range."""
    for f in PROD.glob("*.py"):
        text = f.read_text(encoding="utf-8")
        assert text.count('query = f"""') == len(
            re.findall(r"# data_processors/\S+\.py:\d+-\d+", text)
        )


@pytest.mark.parametrize(
    ("processor", "source", "prod_line"),
    [
        ("player_game_summary", "nba_analytics.team_offense_game_summary", 1167),
        ("player_game_summary", "nba_raw.nbac_player_boxscores", 1020),
    ],
)
def test_lines_point_at_the_read(processor: str, source: str, prod_line: int) -> None:
    """A finding's line is the FROM of the read: the extract's line maps back to production's
    (the query starts at line 882 there and at line 10 here), multi-line template holes included."""
    (f,) = [
        x
        for x in A.findings
        if (x.code, x.processor, x.source) == ("missing_input", processor, source)
    ]
    assert f.origin is not None and 882 + f.origin.line - 10 == prod_line
