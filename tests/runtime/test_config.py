"""serve's configuration: flag > environment > routes.yaml server: > default, one table."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from cli_fork import CliRun, run_cli
from scoperouter.errors import ConfigError
from scoperouter.processor_registry.models import ServerSpec
from scoperouter.runtime.config import SETTINGS, YAML_KEYS, cli_values, resolve
from scoperouter.runtime.options import RouterOptions

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "cli", "env", "server", "value", "source"),
    [
        ("port", {}, {}, {}, 8080, "default"),
        ("port", {}, {}, {"port": 9000}, 9000, "server.port"),
        ("port", {}, {"PORT": "7000"}, {"port": 9000}, 7000, "$PORT"),
        ("port", {}, {"SCOPEROUTER_PORT": "7001"}, {}, 7001, "$SCOPEROUTER_PORT"),
        ("port", {"port": 6000}, {"PORT": "7000"}, {"port": 9000}, 6000, "--port"),
        ("port", {}, {"PORT": ""}, {"port": 9000}, 9000, "server.port"),
        ("sync", {}, {}, {"sync": "normal"}, "normal", "server.sync"),
        ("sync", {"sync": "full"}, {}, {"sync": "normal"}, "full", "--sync"),
        ("http", {"http": False}, {}, {"http": True}, False, "--no-http"),
        ("http", {}, {"SCOPEROUTER_HTTP": "false"}, {}, False, "$SCOPEROUTER_HTTP"),
        ("log", {}, {}, {"log": False}, False, "server.log"),
        ("dedup_horizon", {}, {}, {"dedup_horizon": "2h"}, 7200.0, "server.dedup_horizon"),
        (
            "dedup_horizon",
            {},
            {"SCOPEROUTER_DEDUP_HORIZON": "90"},
            {},
            90.0,
            "$SCOPEROUTER_DEDUP_HORIZON",
        ),
        ("state_dir", {}, {}, {"state_dir": "/srv/s"}, Path("/srv/s"), "server.state_dir"),
        (
            "bearer_token",
            {},
            {"SCOPEROUTER_BEARER_TOKEN": "tok"},
            {},
            "tok",
            "$SCOPEROUTER_BEARER_TOKEN",
        ),
        ("bearer_token", {}, {}, {"bearer_token": "ignored"}, None, "default"),
        ("shadow", {"shadow": True}, {}, {}, True, "--shadow"),
        ("shadow", {}, {"SCOPEROUTER_SHADOW": "true"}, {"shadow": True}, False, "default"),
        ("max_batch", {}, {}, {"max_batch": 64}, 64, "server.max_batch"),
        ("done_retention", {}, {}, {"done_retention": "1d"}, 86400.0, "server.done_retention"),
        ("mark_flush_interval", {}, {}, {}, 0.05, "default"),
        (
            "log_level",
            {},
            {"SCOPEROUTER_LOG_LEVEL": "debug"},
            {},
            "DEBUG",
            "$SCOPEROUTER_LOG_LEVEL",
        ),
    ],
)
def test_precedence(
    name: str,
    cli: dict[str, Any],
    env: dict[str, str],
    server: dict[str, Any],
    value: object,
    source: str,
) -> None:
    """Each setting comes from the first of flag, environment, server:, default that sets it."""
    conf = resolve(cli, env, server)
    assert (conf[name], conf.sources[name]) == (value, source)


@pytest.mark.parametrize(
    ("cli", "env", "server", "where"),
    [
        ({}, {"PORT": "abc"}, {}, "<environment>:1:1: error: PORT: expected an integer"),
        ({}, {"SCOPEROUTER_SYNC": "off"}, {}, "SCOPEROUTER_SYNC: expected one of full, normal"),
        ({}, {"SCOPEROUTER_LOCK_TIMEOUT": "soon"}, {}, "expected a duration"),
        ({}, {}, {"as_of": "tomorrow"}, "routes.yaml:1:1: error: server.as_of: expected a date"),
        ({"host": " "}, {}, {}, "<command line>:1:1: error: --host: expected a non-empty string"),
        ({}, {"SCOPEROUTER_CPUS": "one"}, {}, "SCOPEROUTER_CPUS: expected auto, all or a CPU list"),
        ({}, {}, {"cpus": "3-1"}, "server.cpus: CPU range '3-1' runs backwards"),
    ],
)
def test_bad_values_name_their_source(
    cli: dict[str, Any], env: dict[str, str], server: dict[str, Any], where: str
) -> None:
    """A value that does not parse is a ConfigError naming the flag, variable or server: key."""
    with pytest.raises(ConfigError) as info:
        resolve(cli, env, server)
    assert where in info.value.issues[0].format()


def test_every_setting_reachable_from_server_section() -> None:
    """Every serve setting except the secret token is a server: key, and every router option a setting."""
    fields = set(ServerSpec.model_fields)
    assert set(YAML_KEYS) <= fields
    # shadow: a processor's `mode` in routes.yaml, or every processor with `serve --shadow`
    assert {s.name for s in SETTINGS} - set(YAML_KEYS) == {"bearer_token", "shadow"}
    routed = {s.router for s in SETTINGS if s.router}
    # shadow: per processor in routes.yaml (`mode`), or every processor with `serve --shadow`
    assert routed | {"as_of", "dedup_horizon_s", "shadow"} == set(
        RouterOptions.__dataclass_fields__
    )


def test_defaults_match_router_options() -> None:
    """The table's defaults are RouterOptions' defaults (one value, two places checked)."""
    conf = resolve({}, {}, {})
    opts = RouterOptions(**conf.router_options())
    assert opts == RouterOptions()


def _cli(*args: str, env: dict[str, str]) -> CliRun:
    """The CLI in a process of its own with ``env`` added (tests/cli_fork.py)."""
    return run_cli(args, cwd=ROOT, budget_s=60, env={**os.environ, **env})


def test_bad_port_does_not_break_other_commands() -> None:
    """PORT=abc does not crash validate (nothing is resolved at parser build); serve names it."""
    ok = _cli("validate", "routes.yaml", env={"PORT": "abc"})
    assert ok.returncode == 0, ok.stderr
    bad = _cli("serve", "--print-config", env={"PORT": "abc"})
    assert bad.returncode == 1 and "PORT: expected an integer, got 'abc'" in bad.stderr


def test_print_config_shows_sources(tmp_path: Path) -> None:
    """serve --print-config --json prints each value with where it came from, the token masked."""
    import json

    text = (ROOT / "routes.yaml").read_text() + "\nserver:\n  max_batch: 32\n  host: 0.0.0.0\n"
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(text.replace("dir: data/relations", f"dir: {ROOT / 'data' / 'relations'}"))
    out = _cli(
        "serve",
        "--config",
        str(cfg),
        "--print-config",
        "--json",
        "--port",
        "1234",
        env={"SCOPEROUTER_BEARER_TOKEN": "secret"},
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["max_batch"] == {"value": 32, "source": "server.max_batch"}
    assert got["host"] == {"value": "0.0.0.0", "source": "server.host"}
    assert got["port"] == {"value": 1234, "source": "--port"}
    assert got["bearer_token"] == {"value": "***", "source": "$SCOPEROUTER_BEARER_TOKEN"}
    assert "secret" not in out.stdout


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        (("--shutdown-timeout", "8s", "--lock-timeout", "2m"), (8.0, 120.0)),
        (("--shutdown-timeout", "2", "--lock-timeout", "1.5"), (2.0, 1.5)),  # plain seconds
        (("--shutdown-timeout", "500ms"), (0.5, 30.0)),
    ],
)
def test_timeout_flags_take_durations_as_the_server_keys_do(
    flags: tuple[str, ...], want: tuple[float, float]
) -> None:
    """--shutdown-timeout and --lock-timeout take 8s / 2m as their server: keys and variables
    do (they refused '8s' as an invalid float), and plain seconds as before."""
    import json

    out = _cli("serve", "--print-config", "--json", *flags, env={})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["shutdown_timeout"]["value"], got["lock_timeout"]["value"]) == want


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        ((), {"value": False, "source": "default"}),
        (("--shadow",), {"value": True, "source": "--shadow"}),
    ],
    ids=["live", "shadow"],
)
def test_print_config_shows_shadow(flags: tuple[str, ...], want: dict[str, Any]) -> None:
    """serve --print-config shows --shadow with the other settings (it prints every one)."""
    import json

    out = _cli("serve", "--print-config", "--json", *flags, env={})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["shadow"] == want


def _serve_flag(flag: str, text: str) -> Any:
    """What serve's parser makes of ``flag text`` (SystemExit 2 when it refuses it)."""
    from scoperouter.cli import build_parser

    args = build_parser(("serve",)).parse_args(["serve", flag, text])
    return resolve(cli_values(args), {}, {}, only=(flag[2:].replace("-", "_"),))


def _from_env(name: str, text: str) -> Any:
    return resolve({}, {f"SCOPEROUTER_{name.upper()}": text}, {}, only=(name,))


def _from_yaml(tmp_path: Path, name: str, text: str) -> Any:
    """routes.yaml's ``server: {name: text}`` as serve reads it (the schema first)."""
    import jsonschema
    import yaml

    from scoperouter.commands.serve import resolve_settings
    from scoperouter.processor_registry.loader import load_config

    body = (
        "version: 1\nentities: {team: {}}\nsources: {raw.t: {entity: team}}\n"
        "processors:\n  p: {phase: 1, granularity: team, inputs: [{source: raw.t}],"
        " publishes: mart.p}\n"
        f"server: {{{name}: {text}}}\n"
    )
    path = tmp_path / "routes.yaml"
    path.write_text(body, encoding="utf-8")
    schema = json.loads((ROOT / "schemas" / "routes.schema.json").read_text(encoding="utf-8"))
    in_schema = not list(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(body)))
    reg = load_config(path, with_relations=False).registry
    assert in_schema, f"schemas/routes.schema.json refuses {name}: {text}"
    return resolve_settings(argparse.Namespace(), reg.spec.server, str(path))


@pytest.mark.parametrize(
    ("name", "text", "want"),
    [
        ("relations_refresh", "0", 0.0),  # 0 = only SIGHUP (docs/registry.md)
        ("relations_refresh", "30", 30.0),
        ("relations_refresh", "1.5", 1.5),
        ("relations_refresh", "30s", 30.0),
        ("lease", "45", 45.0),
        ("dedup_horizon", "3600", 3600.0),
        ("state_lock_timeout", "0", 0.0),
        ("lock_timeout", "2m", 120.0),
        ("shutdown_timeout", "5", 5.0),
        ("relations_refresh", "-1", None),
        ("relations_refresh", "soon", None),
        ("lease", "30x", None),
    ],
)
def test_duration_settings_agree_across_flag_env_and_yaml(
    tmp_path: Path, name: str, text: str, want: float | None
) -> None:
    """A duration setting takes the same values (a bare number = seconds, 0 included) from
    its flag, its environment variable and routes.yaml's server: (and its JSON Schema)."""
    flag = "--" + name.replace("_", "-")
    sources = {
        "flag": lambda: _serve_flag(flag, text),
        "env": lambda: _from_env(name, text),
        "yaml": lambda: _from_yaml(tmp_path, name, text),
    }
    for where, get in sources.items():
        if want is None:
            with pytest.raises((ConfigError, SystemExit, AssertionError)):
                get()
        else:
            assert get()[name] == want, where
