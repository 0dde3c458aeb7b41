"""serve with neither HTTP nor a Pub/Sub subscription receives nothing: a one-line error at
start naming both settings -- unless the state store is shared (PostgreSQL), where such a
replica still fires and dispatches the others' windows (a WARNING says it takes no events)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reload_support import small_registry

from cli_fork import run_cli


@pytest.mark.parametrize(
    ("flags", "env", "yaml", "named"),
    [
        (["--no-http"], {}, "", "--no-http"),
        ([], {"SCOPEROUTER_HTTP": "false"}, "", "$SCOPEROUTER_HTTP"),
        ([], {}, "server: {http: false}\n", "server.http"),
    ],
    ids=["flag", "env", "yaml"],
)
def test_serve_without_any_intake_is_a_config_error(
    tmp_path: Path, flags: list[str], env: dict[str, str], yaml: str, named: str
) -> None:
    """HTTP off (flag, variable or server:) and no subscription: exit 1 with one line naming
    where HTTP was turned off and the subscription settings, before the daemon starts."""
    cfg = small_registry(tmp_path)
    with cfg.open("a", encoding="utf-8") as fh:
        fh.write(yaml)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEROUTER_")}
    out = run_cli(
        ["serve", "--config", str(cfg), "--state-dir", str(tmp_path / "st"), *flags],
        cwd=tmp_path,
        budget_s=30,
        env={**clean, **env},
    )
    assert out.returncode == 1, out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: ") and named in line and "--subscription" in line, line
    assert not (tmp_path / "st").exists()  # nothing started


def test_serve_without_intake_on_a_shared_store_only_warns(tmp_path: Path) -> None:
    """On a shared (PostgreSQL) store a replica without intake still routes the others'
    windows: a WARNING, then serve goes on (here: to the unreachable database's error)."""
    cfg = small_registry(tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEROUTER_")}
    out = run_cli(
        [
            "serve", "--config", str(cfg), "--state-dir", str(tmp_path / "st"), "--no-http",
            "--state", "postgresql://nobody@127.0.0.1:9/nowhere?connect_timeout=1",
        ],
        cwd=tmp_path,
        budget_s=60,
        env=clean,
    )  # fmt: skip
    assert "no_intake" in out.stderr and "takes no events" in out.stderr, out.stderr
