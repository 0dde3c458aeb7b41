"""Acceptance on the demo's own log: ``scoperouter demo`` then ``report --json`` covers every
processor (league_rankings never entity-level) and re-planning the logged events under the
demo's settings reproduces the logged decisions exactly.

Skips with a visible reason while ``scoperouter demo`` does not write the execution log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo_support import DemoRun
from scoperouter.cli import main
from scoperouter.execution_log import DEFAULT_LOG_PATH
from scoperouter.execution_log.analysis import ENTITY_LEVEL
from scoperouter.execution_log.reader import read_log
from scoperouter.execution_log.whatif import replay, verify_decisions
from scoperouter.processor_registry.loader import load_config

# An explicit budget for a loaded 2-core machine: a whole demo day in its fixture (about 15 s idle),
# 4-8x that under load.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def demo_log(demo_run: DemoRun) -> Path:
    """The log ``scoperouter demo`` writes at its default path (the session's demo run, in
    a fresh directory)."""
    assert demo_run.rc == 0
    log = demo_run.cwd / DEFAULT_LOG_PATH
    if not log.is_file():
        pytest.skip(
            f"scoperouter demo wrote no execution log at ./{DEFAULT_LOG_PATH} (not wired in yet)"
        )
    return log


def test_report_json_after_demo(
    demo_log: Path, routes_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """report --json shows every processor of the demo; league_rankings is never entity-level."""
    capsys.readouterr()
    assert main(["report", "--log", str(demo_log), "--config", str(routes_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    procs = {p["processor"]: p for p in out["processors"]}
    reg = load_config(routes_path, with_relations=False).registry
    assert set(procs) == set(reg.processor_names)
    assert all(procs[n]["runs"] > 0 for n in reg.processor_names), {
        n: p["runs"] for n, p in procs.items()
    }
    assert procs["league_rankings"]["recommendation"] != ENTITY_LEVEL


def test_demo_log_replays_exactly(demo_log: Path, routes_path: Path) -> None:
    """The demo's logged events re-planned under its own settings give the logged decisions."""
    cfg = load_config(routes_path)
    data = read_log(demo_log)
    assert data.events
    assert verify_decisions(data, replay(cfg.registry, cfg.relations, data.events)) == []
