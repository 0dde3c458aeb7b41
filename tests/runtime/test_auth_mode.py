"""Which authentication serve applies, shown and logged: --print-config's auth line, the
start's INFO line, a WARNING when a bearer token from the environment replaces
server.auth.oidc, and one when nothing authenticates a non-loopback bind (review7 #3, #4)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, load, write_registry

from scoperouter.cli import main
from scoperouter.runtime.auth_mode import AuthMode, is_loopback, log_auth
from scoperouter.runtime.daemon import Daemon, DaemonSettings

OIDC = {"oidc": {"audience": "https://router.example/events"}}
TOKEN = "s3cret-bearer-tok"


@pytest.mark.parametrize(
    ("auth", "env_token", "expected"),
    [
        (None, None, {"value": {"mode": "none"}, "source": "default"}),
        (
            OIDC,
            None,
            {
                "value": {"mode": "oidc", "audience": "https://router.example/events"},
                "source": "server.auth.oidc",
            },
        ),
        (
            {"bearer_token": TOKEN},
            None,
            {
                "value": {"mode": "bearer", "bearer_token": "***"},
                "source": "server.auth.bearer_token",
            },
        ),
        (
            OIDC,
            TOKEN,
            {
                "value": {"mode": "bearer", "bearer_token": "***", "overrides": "server.auth.oidc"},
                "source": "$SCOPEROUTER_BEARER_TOKEN",
            },
        ),
        (
            None,
            TOKEN,
            {
                "value": {"mode": "bearer", "bearer_token": "***"},
                "source": "$SCOPEROUTER_BEARER_TOKEN",
            },
        ),
    ],
    ids=["none", "oidc", "yaml-bearer", "env-bearer-over-oidc", "env-bearer"],
)
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_print_config_shows_the_auth_in_force(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    auth: dict[str, Any] | None,
    env_token: str | None,
    expected: dict[str, Any],
    as_json: bool,
) -> None:
    """serve --print-config has an auth entry (mode, source, what it overrides), the bearer token masked."""
    monkeypatch.delenv("SCOPEROUTER_BEARER_TOKEN", raising=False)
    if env_token:
        monkeypatch.setenv("SCOPEROUTER_BEARER_TOKEN", env_token)
    cfg = write_registry(tmp_path, server={"auth": auth} if auth else None)
    rc = main(["serve", "--config", str(cfg), "--print-config", *(["--json"] if as_json else [])])
    out = capsys.readouterr().out
    assert rc == 0
    assert TOKEN not in out
    if as_json:
        assert json.loads(out)["auth"] == expected
    else:
        line = next(x for x in out.splitlines() if x.startswith("auth "))
        assert f"({expected['source']})" in line and repr(expected["value"]) in line


def settings(state: Path, **kw: Any) -> DaemonSettings:
    return DaemonSettings(state_dir=state, port=0, as_of=GAME_DAY, sync="normal", **kw)


@pytest.mark.parametrize(
    ("auth", "token", "info", "warning"),
    [
        (None, None, "authentication: none (default)", None),
        (OIDC, None, "authentication: oidc (server.auth.oidc)", None),
        (
            OIDC,
            TOKEN,
            "authentication: bearer ($SCOPEROUTER_BEARER_TOKEN)",
            "$SCOPEROUTER_BEARER_TOKEN replaces server.auth.oidc configured in routes.yaml",
        ),
        (
            {"bearer_token": "other-token-1"},
            TOKEN,
            "authentication: bearer ($SCOPEROUTER_BEARER_TOKEN)",
            "$SCOPEROUTER_BEARER_TOKEN replaces server.auth.bearer_token",
        ),
    ],
    ids=["none", "oidc", "env-bearer-over-oidc", "env-bearer-over-yaml-bearer"],
)
async def test_the_daemon_logs_its_auth_mode_at_start(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    auth: dict[str, Any] | None,
    token: str | None,
    info: str,
    warning: str | None,
) -> None:
    """The start logs the auth mode at INFO, and a WARNING when the bearer token overrides a configured auth."""
    cfg = load(write_registry(tmp_path, server={"auth": auth} if auth else None))
    d = Daemon(
        cfg.registry,
        cfg.relations,
        settings(
            tmp_path / "s", bearer_token=token, bearer_source="$SCOPEROUTER_BEARER_TOKEN", env={}
        ),
    )
    with caplog.at_level(logging.INFO, logger="scoperouter.runtime.daemon"):
        await d.start()
        await d.stop()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(info in m for m in infos), infos
    if warning is None:
        assert not [m for m in warnings if "authentication" in m or "replaces" in m], warnings
    else:
        assert any(warning in m for m in warnings), warnings
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("10.1.2.3", False),
        ("router.internal", False),
    ],
)
def test_unauthenticated_non_loopback_binds_warn(
    caplog: pytest.LogCaptureFixture, host: str, loopback: bool
) -> None:
    """No auth on a bind address other than loopback logs a WARNING naming the open endpoints; loopback does not."""
    assert is_loopback(host) is loopback
    with caplog.at_level(logging.INFO, logger="scoperouter.runtime.daemon"):
        log_auth(AuthMode("none", "default"), host)
        log_auth(AuthMode("bearer", "server.auth.bearer_token", {"bearer_token": "***"}), host)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if loopback:
        assert warnings == []
    else:
        assert len(warnings) == 1 and "POST /events and POST /backfills" in warnings[0]
