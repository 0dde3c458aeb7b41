"""What ``serve`` and ``explain`` refuse or assume about their settings: a flag checked like its
environment variable, an unknown log level, a port in use, a state URL of another database, and
the as-of date ``explain`` defaults to (the UTC date ``serve`` uses)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scoperouter.cli import build_parser, main
from scoperouter.commands.serve import resolve_settings
from scoperouter.errors import ConfigError

REGISTRY = """\
version: 1
entities:
  player: {}
processors:
  summary:
    phase: 3
    granularity: player
    inputs:
      - source: raw.box
"""


def _pythonpath() -> str:
    """The subprocess imports the same scoperouter as this test (PYTHONPATH, else src/)."""
    import os

    return os.environ.get("PYTHONPATH") or str(Path(__file__).resolve().parents[2] / "src")


def _serve_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *flags])


@pytest.mark.parametrize(
    ("flags", "env_equivalent"),
    [
        (("--port", "70000"), "PORT=70000"),
        (("--port", "-1"), "PORT=-1"),
        (("--max-body-bytes", "0"), "SCOPEROUTER_MAX_BODY_BYTES=0"),
        (("--outbox-max-bytes", "-5"), "SCOPEROUTER_OUTBOX_MAX_BYTES=-5"),
        (("--outbox-keep", "0"), "SCOPEROUTER_OUTBOX_KEEP=0"),
        (("--shutdown-timeout", "-3"), "SCOPEROUTER_SHUTDOWN_TIMEOUT=-3"),
        (("--lock-timeout", "-1"), "SCOPEROUTER_LOCK_TIMEOUT=-1"),
    ],
)
def test_serve_flags_are_checked_like_their_environment_variables(
    flags: tuple[str, ...], env_equivalent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flag value its environment variable would be refused for is refused too, naming the flag."""
    var, value = env_equivalent.split("=")
    for name in ("PORT", "SCOPEROUTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError):  # the environment variable: rejected
        resolve_settings(_serve_args(), None)
    monkeypatch.delenv(var)
    with pytest.raises(ConfigError) as info:  # the same value as a flag: accepted today
        resolve_settings(_serve_args(*flags), None)
    assert flags[0] in info.value.issues[0].format()


def test_print_config_exits_1_on_an_out_of_range_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --print-config --port 70000`` exits 1 naming the flag."""
    for name in ("PORT", "SCOPEROUTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(REGISTRY, encoding="utf-8")
    rc = main(["serve", "--config", str(cfg), "--print-config", "--port", "70000"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "--port" in err


LOOKBACK_REGISTRY = REGISTRY.replace("    inputs:", "    lookback: {days: 2}\n    inputs:")


def test_explain_default_as_of_is_the_utc_date_serve_uses(tmp_path: Path) -> None:
    """Without --as-of, explain caps lookbacks at the UTC date, as serve does, in any time zone."""
    import json
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    # a zone whose local date differs from the UTC date right now
    tz = "Etc/GMT+12" if now.hour < 12 else "Etc/GMT-14"
    utc_today = now.date()
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(LOOKBACK_REGISTRY, encoding="utf-8")
    day = utc_today - timedelta(days=1)
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps({"source": "raw.box", "game_date": day.isoformat()}))
    env = {**os.environ, "TZ": tz, "PYTHONPATH": _pythonpath()}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "scoperouter.cli",
            "explain",
            str(ev),
            "--config",
            str(cfg),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    if datetime.now(UTC).date() != utc_today:
        pytest.skip("ran across UTC midnight")
    (decision,) = json.loads(out.stdout)["decisions"]
    # serve: D and D+1 (= UTC today); D+2 is after the as-of cap
    assert decision["dates"] == [day.isoformat(), utc_today.isoformat()], tz


@pytest.mark.parametrize(
    "where",
    [
        ("--log-level", "verbose"),
        ("env", "SCOPEROUTER_LOG_LEVEL=verbose"),
        ("server", "log_level: LOUD"),
    ],
    ids=["flag", "environment", "server"],
)
def test_an_unknown_log_level_is_a_config_error_not_a_traceback(
    where: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown log level from a flag, the environment or server: is a config error, exit 1."""
    monkeypatch.delenv("SCOPEROUTER_LOG_LEVEL", raising=False)
    text = REGISTRY
    flags: list[str] = []
    if where[0] == "--log-level":
        flags = [where[0], where[1]]
    elif where[0] == "env":
        monkeypatch.setenv(*where[1].split("="))
    else:
        text += f"server:\n  {where[1]}\n"
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    rc = main(["serve", "--config", str(cfg), "--state-dir", str(state), "--port", "0", *flags])
    assert rc == 1
    assert not state.exists()  # refused before anything started


def _serve(cfg: Path, tmp_path: Path, *flags: str, timeout: float = 20) -> tuple[int | None, str]:
    """``scoperouter serve`` in a subprocess: (exit status, stderr); (None, stderr) when it
    was still running after ``timeout`` seconds (then killed)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    for name in ("PORT", "SCOPEROUTER_PORT", "SCOPEROUTER_STATE"):
        env.pop(name, None)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg), *flags],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return None, err
    return out.returncode, out.stderr


def test_serve_on_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    """A port already in use is a one-line error and exit 1, no traceback."""
    import socket

    cfg = tmp_path / "routes.yaml"
    cfg.write_text(REGISTRY, encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, err = _serve(cfg, tmp_path, "--port", str(port), "--state-dir", str(tmp_path / "s"))
    assert rc == 1, err
    assert "Traceback" not in err, err
    assert str(port) in err and "in use" in err


@pytest.mark.parametrize(
    "location",
    ["mysql://db.internal/router", "postgresql+psycopg://router@db.internal/router"],
)
def test_serve_refuses_a_state_store_url_it_does_not_support(location: str, tmp_path: Path) -> None:
    """A state URL of another database is refused, never made a local SQLite file."""
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(REGISTRY, encoding="utf-8")
    rc, err = _serve(
        cfg, tmp_path, "--port", "0", "--state-dir", str(tmp_path / "s"), "--state", location
    )
    scheme_dir = tmp_path / (location.split("/")[0])
    assert not scheme_dir.exists(), f"created {scheme_dir}"
    assert rc == 1, err
    assert "state store" in err


@pytest.mark.parametrize(
    ("flags", "env", "keep"),
    [((), {}, 3), (("--outbox-keep", "7"), {}, 7), ((), {"SCOPEROUTER_OUTBOX_KEEP": "5"}, 5)],
)
def test_outbox_keep_reaches_the_outbox_sink(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
    env: dict[str, str],
    keep: int,
) -> None:
    """``--outbox-keep`` (or its variable) is the number of rotated files the outbox keeps."""
    from scoperouter.runtime.sinks import SinkFactory

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    conf = resolve_settings(_serve_args(*flags), None)
    sinks = SinkFactory(tmp_path, outbox_keep=conf["outbox_keep"])
    assert conf["outbox_keep"] == keep
    assert sinks.outbox_keep == keep
