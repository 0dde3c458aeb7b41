"""replay, report --what-if and simulate do not model the closed loop: when routes.yaml
turns it on for serve (run_retries, completion_timeout, retry_backoff, barrier), each says
so instead of presenting triggers serve would hold or merge as serve's."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from runtime_support import GAME_DAY, INJURY_EVENT, load, write_registry

from scoperouter.cli import main
from scoperouter.execution_log import open_log
from scoperouter.execution_log.reader import read_log
from scoperouter.execution_log.simulate import record_stream
from scoperouter.execution_log.whatif import what_if
from scoperouter.messages.normalize import parse_event_bytes

# (defaults merged in, a processor's own settings) -> the loop serve turns on (None: off)
CASES = [
    ({}, {}, None),
    ({"run_retries": 1}, {}, "run_retries"),
    ({}, {"barrier": {"timeout": "2h"}}, "barrier"),
    ({}, {"completion_timeout": "30m"}, "completion_timeout"),
]


def _cfg(tmp_path: Path, defaults: dict[str, Any], own: dict[str, Any]) -> Path:
    path = write_registry(tmp_path / "cfg", quiet="10s", max_wait="30s", defaults=defaults)
    spec = yaml.safe_load(path.read_text())
    spec["processors"]["ml_feature_store"].update(own)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(("defaults", "own", "setting"), CASES)
def test_replay_warns_that_the_loop_is_not_modelled(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    defaults: dict[str, Any],
    own: dict[str, Any],
    setting: str | None,
) -> None:
    """replay prints one warning on stderr naming the setting, only when serve loops."""
    cfg = _cfg(tmp_path, defaults, own)
    events = tmp_path / "ev.jsonl"
    events.write_text(json.dumps({**INJURY_EVENT, "produced_at": "2025-11-19T18:00:00Z"}) + "\n")
    assert main(["replay", str(events), "--config", str(cfg), "--dry-run"]) == 0
    err = capsys.readouterr().err
    if setting is None:
        assert "closed loop" not in err
    else:
        (line,) = [x for x in err.splitlines() if "closed loop" in x]
        assert line.startswith("warning: replay does not model the closed loop") and setting in line


@pytest.mark.parametrize(("defaults", "own", "setting"), CASES)
def test_what_if_and_simulate_say_the_loop_is_not_modelled(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    defaults: dict[str, Any],
    own: dict[str, Any],
    setting: str | None,
) -> None:
    """report --what-if carries the warning in its result; simulate logs it."""
    cfg = load(_cfg(tmp_path, defaults, own))
    ev = parse_event_bytes(json.dumps(INJURY_EVENT).encode(), cfg.registry)
    log = open_log(tmp_path / "log.sqlite")
    at = datetime(2025, 11, 19, 18, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="scoperouter.execution_log.simulate"):
        record_stream(log, cfg.registry, cfg.relations, [(ev, at)], as_of=GAME_DAY)
    log.close()
    logged = [r.getMessage() for r in caplog.records if "closed loop" in r.getMessage()]
    wi = what_if(
        cfg.registry, cfg.relations, read_log(tmp_path / "log.sqlite"), {"max_entities": "5"}
    )
    if setting is None:
        assert (logged, wi["loop_not_modelled"]) == ([], None)
    else:
        assert len(logged) == 1 and setting in logged[0]
        assert setting in wi["loop_not_modelled"]
