"""``replay``, ``explain`` and ``backfill --dry-run`` cap lookbacks at the date ``serve``
would: ``--as-of``, else ``$SCOPEROUTER_AS_OF``, else ``routes.yaml``'s ``server.as_of``."""

from __future__ import annotations

import argparse
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from runtime_support import load, write_registry

from scoperouter.cli import main
from scoperouter.commands.serve import resolve_settings

# produced six days after the game: without server.as_of replay's virtual clock says 11-25
EVENT = {
    "event_id": "e-asof-1",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-17",
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_status"],
    "produced_at": "2025-11-25T12:00:00Z",
}

# (--as-of, $SCOPEROUTER_AS_OF, server.as_of) -> the date serve and the commands use
CASES = [
    (None, None, "2025-11-19", "2025-11-19"),
    (None, "2025-11-18", "2025-11-19", "2025-11-18"),
    ("2025-11-20", "2025-11-18", "2025-11-19", "2025-11-20"),
]


def _setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, server: str | None
) -> tuple[Path, Path]:
    cfg = write_registry(tmp_path / "cfg", server={"as_of": server} if server else None)
    events = tmp_path / "ev.jsonl"
    events.write_text(json.dumps(EVENT) + "\n")
    if env is None:
        monkeypatch.delenv("SCOPEROUTER_AS_OF", raising=False)
    else:
        monkeypatch.setenv("SCOPEROUTER_AS_OF", env)
    monkeypatch.chdir(tmp_path)
    return cfg, events


def _serve_as_of(cfg: Path, flag: str | None) -> date:
    """The as-of ``serve`` resolves from the same flag, environment and routes.yaml."""
    args = argparse.Namespace(as_of=date.fromisoformat(flag) if flag else None)
    value: date = resolve_settings(args, load(cfg).registry.spec.server)["as_of"]
    return value


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def _replay(cfg: Path, events: Path, flags: list[str], capsys: Any) -> date:
    out = _run(["replay", str(events), "--config", str(cfg), "--dry-run", "--json", *flags], capsys)
    triggers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return max(date.fromisoformat(t["game_date"]) for t in triggers)  # lookbacks stop there


def _explain(cfg: Path, events: Path, flags: list[str], capsys: Any) -> date:
    out = _run(["explain", str(events), "--config", str(cfg), *flags], capsys)
    return date.fromisoformat(re.findall(r"\(as of (\d{4}-\d\d-\d\d)\)", out)[0])


def _backfill(cfg: Path, events: Path, flags: list[str], capsys: Any) -> date:
    argv = ["backfill", "--config", str(cfg), "--start", "2025-11-17", "--end", "2025-11-17"]
    out = _run([*argv, "--processors", "ml_feature_store", "--dry-run", *flags], capsys)
    return date.fromisoformat(re.findall(r", as of (\d{4}-\d\d-\d\d)", out)[0])


@pytest.mark.parametrize("command", [_replay, _explain, _backfill], ids=lambda f: f.__name__[1:])
@pytest.mark.parametrize(("flag", "env", "server", "want"), CASES)
def test_a_command_caps_lookbacks_where_serve_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: Any,
    flag: str | None,
    env: str | None,
    server: str | None,
    want: str,
) -> None:
    """The command's as-of is serve's: flag, then environment, then server.as_of."""
    cfg, events = _setup(tmp_path, monkeypatch, env, server)
    assert _serve_as_of(cfg, flag) == date.fromisoformat(want)
    flags = ["--as-of", flag] if flag else []
    assert command(cfg, events, flags, capsys) == date.fromisoformat(want)
