"""``scoperouter demo --config FILE`` checks FILE against today's behaviour: the date-level
baseline is the reference pipeline's own registry and relations, never the registry under
test, so a registry that drops a needed input loses updates visibly (exit 1) instead of
dropping the same runs from both sides of the comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from nba_support import (
    REPO,
    ROUTES,
    differing_columns,
    drop_feature_store_player_status,
    input_of,
    routes_data,
)

import scoperouter.examples.nba.demo as demo_mod
from scoperouter.cli import main
from scoperouter.examples.nba.demo import DemoResult
from scoperouter.examples.nba.processors import BY_NAME, INJURY

pytestmark = pytest.mark.timeout(900)

# production's usage-rate edge (README: removing it from a copy of routes.yaml must fail)
USAGE_RATE_INPUT = (
    "      - source: nba_analytics.team_offense_game_summary  # usage rate: pgs:331 (critical), "
    "pgs:1167; team runs first (svc:703-726)\n"
    "        # production's column names: pgs:1147-1151\n"
    "        fields: [fg_attempted, turnovers, possessions, fg_attempts, ft_attempts, quality_tier]\n"
)


# a whole demo (about 20 s): CI's slow step runs it
@pytest.mark.slow
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


# the two readers of teammates' injury status (routes.yaml: also_map on their injury input)
MATES = ("upcoming_player_game_context", "ml_feature_store")


# one whole demo each (about 20 s): CI's slow step runs them; the default run has the
# smaller proofs that the teammates' also_map is needed (tests/nba/test_teammates_box_scores.py,
# the planner's route tests) and the demo itself as the unchanged copy's control
# (tests/nba/test_nba_demo.py)
@pytest.mark.slow
@pytest.mark.parametrize(
    "dropped",
    [
        pytest.param((), id="packaged-copy"),
        pytest.param((MATES[0],), id="no-also_map-upgc"),
        pytest.param((MATES[1],), id="no-also_map-mlfs"),
        pytest.param(MATES, id="no-also_map"),
    ],
)
def test_demo_needs_the_teammates_also_map(
    dropped: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A routes.yaml copy without the injury input's also_map of either teammates' reader
    loses updates of exactly that processor's output (exit 1), the feature store's in the
    column the teammates' injuries feed; the unchanged copy does not."""
    data = routes_data()
    for proc in dropped:
        del input_of(data, proc, INJURY)["also_map"]
    if "ml_feature_store" in dropped:
        drop_feature_store_player_status(data)  # the path the demo takes instead (nba_support)
    data["relation_data"]["csv"]["dir"] = str(REPO / "data" / "relations")
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    captured: list[DemoResult] = []
    real = demo_mod.run_demo

    def spy(*args: Any, **kwargs: Any) -> DemoResult:
        captured.append(real(*args, **kwargs))
        return captured[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_mod, "run_demo", spy)
        rc = main(["demo", "--config", str(cfg), "--json", "--no-log"])
    out = json.loads(capsys.readouterr().out)
    differing = captured[0].comparison.differing
    assert set(differing) == {BY_NAME[p].publishes for p in dropped}
    if "ml_feature_store" in dropped:
        # injury_risk is the dropped player_status's; feature 47 is the also_map's
        mlfs = BY_NAME["ml_feature_store"].publishes
        assert differing_columns(captured[0].comparison, mlfs) == {
            "injury_risk",
            "teammate_usage_available",
        }
    assert (rc, out["outputs_identical"], out["missed_updates"] > 0) == (
        (1, False, True) if dropped else (0, True, False)
    )
