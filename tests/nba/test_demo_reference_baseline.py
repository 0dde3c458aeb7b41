"""``scoperouter demo --config FILE`` checks FILE against today's behaviour: the date-level
baseline is the reference pipeline's own registry and relations, never the registry under
test, so a registry that drops a needed input loses updates visibly (exit 1) instead of
dropping the same runs from both sides of the comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nba_support import REPO, ROUTES

from scoperouter.cli import main

pytestmark = pytest.mark.timeout(900)

# production's usage-rate edge (README: removing it from a copy of routes.yaml must fail)
USAGE_RATE_INPUT = (
    "      - source: nba_analytics.team_offense_game_summary  # usage rate: pgs:331 (critical), "
    "pgs:1167; team runs first (svc:703-726)\n"
    "        fields: [fg_attempted, turnovers, possessions]\n"
)


def test_demo_config_without_a_needed_input_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A routes.yaml copy missing player_game_summary <- team_offense_game_summary exits 1."""
    text = ROUTES.read_text(encoding="utf-8")
    assert text.count(USAGE_RATE_INPUT) == 1
    text = text.replace(USAGE_RATE_INPUT, "").replace(
        "csv: {dir: data/relations}", f"csv: {{dir: {REPO / 'data' / 'relations'}}}"
    )
    broken = tmp_path / "routes.yaml"
    broken.write_text(text, encoding="utf-8")
    rc = main(["demo", "--config", str(broken), "--json", "--no-log"])
    out = json.loads(capsys.readouterr().out)
    assert (out["outputs_identical"], rc) == (False, 1)
    assert out["missed_updates"] > 0
