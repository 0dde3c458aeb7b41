"""``scoperouter test``: an expectation that checks nothing is a positioned file error, never a
case that passes whatever the registry decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]

# An injury update for lebronjames: player_game_summary runs for him, team_offense_game_summary
# does not read the injury report (routes.tests.yaml) -- whatever the cases below say, they
# would pass if the expectation were not checked.
EVENT = (
    "{event_id: e-1, source: nba_raw.nbac_injury_report, game_date: 2025-11-19, "
    "affected_entities: {players: [lebronjames]}, changed_fields: [injury_status]}"
)


@pytest.mark.parametrize(
    ("expectation", "where", "message"),
    [
        ("    expect:\n      team_offense_game_summary: {}\n", "expect.team_offense_game_summary", "expects nothing"),
        ("    expect:\n      team_offense_game_summary: {action: null}\n", "expect.team_offense_game_summary", "expects nothing"),
        ("    cascade:\n      team_offense_game_summary: {}\n", "cascade.team_offense_game_summary", "expects nothing"),
        ("    expect:\n      player_game_summary: {entity_ids_include: []}\n", "expect.player_game_summary.entity_ids_include", "at least 1 item"),
        ("    expect:\n      player_game_summary: {dates_include: []}\n", "expect.player_game_summary.dates_include", "at least 1 item"),
        ("    cascade: {}\n", "", "expects nothing"),
        ("    cascade:\n      team_offense_game_summary: {action: skip, reason: irrelevant_fields}\n", "cascade.team_offense_game_summary", "reason cannot be checked"),
        ("    cascade:\n      team_offense_game_summary: {action: skip, hop: 2}\n", "cascade.team_offense_game_summary", "hop cannot be checked"),
    ],
    ids=["empty-expect", "null-action", "empty-cascade", "empty-ids-include", "empty-dates-include", "no-cascade-entry", "cascade-skip-reason", "cascade-skip-hop"],
)  # fmt: skip
def test_expectation_that_checks_nothing_is_a_file_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, expectation: str, where: str, message: str
) -> None:
    """`proc: {}`, `{action: null}`, an empty `*_include` list or a cascade skip with fields
    the wave cannot have (it keeps no skip decisions): exit 1 at its FILE:LINE:COL."""
    f = tmp_path / "routes.tests.yaml"
    f.write_text(
        f"tests:\n  - name: checks nothing\n    event: {EVENT}\n{expectation}", encoding="utf-8"
    )
    rc = main(["test", str(f), "--config", str(REPO / "routes.yaml")])
    out = capsys.readouterr().out
    assert rc == 1, out
    line = next((x for x in out.splitlines() if ": error: " in x), "")
    at = f"{f}:5:" if where else f"{f}:2:"
    assert at in line and f"tests[0]{'.' * bool(where)}{where}" in line, out
    assert message in line, out


def test_cascade_only_without_cascade_checks_the_wave(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`cascade_only: true` with no `cascade:` says the wave reaches nothing: the injury
    update's wave reaches player_game_summary and its consumers, so the case fails."""
    f = tmp_path / "routes.tests.yaml"
    f.write_text(
        f"tests:\n  - name: reaches nothing\n    event: {EVENT}\n"
        "    expect:\n      player_game_summary: run\n    cascade_only: true\n",
        encoding="utf-8",
    )
    rc = main(["test", str(f), "--config", str(REPO / "routes.yaml")])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "cascade player_game_summary: hops" in out, out


@pytest.mark.parametrize(
    "expectation",
    [
        "    expect:\n      team_offense_game_summary: skip\n",
        "    cascade:\n      team_offense_game_summary: {hops: []}\n",
        "    cascade:\n      player_game_summary: {hop: 1}\n",
    ],
    ids=["skip", "cascade-hops-empty", "cascade-hop-only"],
)
def test_expectation_with_one_field_still_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, expectation: str
) -> None:
    """A single field (`skip`, `hops: []` = never reached, `hop: 1` = runs at hop 1) is an expectation."""
    f = tmp_path / "routes.tests.yaml"
    f.write_text(
        f"tests:\n  - name: one field\n    event: {EVENT}\n{expectation}", encoding="utf-8"
    )
    rc = main(["test", str(f), "--config", str(REPO / "routes.yaml")])
    out = capsys.readouterr().out
    assert rc == 0, out
