"""A CLI that reads the same everywhere: the shared options are one definition, and no
command fails because of another's environment."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from cli_fork import CliRun, run_cli
from scoperouter.cli import COMMANDS, build_parser
from scoperouter.commands import DEFAULT_LOG
from scoperouter.execution_log import DEFAULT_LOG_PATH

REPO = Path(__file__).resolve().parents[2]

# command -> the shared options it takes
SHARED = {
    "validate": {"--config", "--json"},
    "explain": {"--config", "--as-of", "--json"},
    "replay": {"--config", "--log", "--no-log", "--as-of", "--json"},
    "test": {"--config", "--as-of", "--json"},
    "serve": {"--config", "--log", "--no-log", "--as-of", "--json"},  # --json: --print-config
    "report": {"--config", "--log", "--json"},
    "schema": {"--json"},
    "graph": {"--config", "--json"},
    "demo": {"--config", "--log", "--no-log", "--json"},
    "lineage": {"--config", "--log", "--json"},
    "sources": set(),  # its subcommand `import` takes --config
    "trace": {"--config", "--log", "--json"},
    "deadletters": set(),  # list / show / redrive each take --json (common(json=True))
    "backfill": {"--config", "--log", "--as-of", "--json"},  # --log: the cost model's log
    "outbox": set(),  # dead triggers of the dispatch outbox: list / redrive / discard
}
ALL_SHARED = {"--config", "--log", "--no-log", "--as-of", "--json"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in p._actions for s in a.option_strings}


def test_every_command_is_listed() -> None:
    """The table above covers every subcommand."""
    assert set(SHARED) == set(COMMANDS) == set(_subparsers())


@pytest.mark.parametrize("command", sorted(SHARED))
def test_shared_options_are_the_same_everywhere(command: str) -> None:
    """Each command has its shared options, and each shared option has the same type,
    default and help text in every command that takes it (only --log's verb differs)."""
    subs = _subparsers()
    mine = _options(subs[command])
    assert ALL_SHARED & set(mine) == SHARED[command]
    if command == "serve":
        # serve's flags default to None: runtime.config resolves flag > env > server: > default
        return
    reference = _options(subs["replay"])
    for opt in SHARED[command]:
        a, ref = mine[opt], reference[opt]
        assert (a.dest, a.type, a.default, a.metavar, a.nargs) == (
            ref.dest,
            ref.type,
            ref.default,
            ref.metavar,
            ref.nargs,
        ), opt
        help_text = (a.help or "").replace("to read", "to append to")
        assert help_text == ref.help, (command, opt)


def test_default_log_is_the_execution_logs() -> None:
    """The CLI's default --log is the execution log's default path."""
    assert DEFAULT_LOG == DEFAULT_LOG_PATH


def _cli(*args: str, env: dict[str, str], cwd: Path = REPO) -> CliRun:
    """The CLI in a process of its own with ``env`` added (tests/cli_fork.py)."""
    return run_cli(args, cwd=cwd, budget_s=120, env={**os.environ, **env})


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "routes.yaml"],
        ["graph", "--format", "dot"],
        ["schema", "--check"],
        ["test"],
        ["--help"],
    ],
    ids=["validate", "graph", "schema", "test", "help"],
)
def test_a_bad_port_breaks_no_other_command(args: list[str]) -> None:
    """PORT=abc (serve's environment) does not break validate, graph, schema, test or --help."""
    r = _cli(*args, env={"PORT": "abc"})
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("port", ["abc", "70000", "-1"])
def test_serve_rejects_a_bad_port_in_one_line(tmp_path: Path, port: str) -> None:
    """serve with a bad $PORT exits 1 (invalid configuration) with one line naming it, before starting anything."""
    r = _cli("serve", "--state-dir", str(tmp_path / "state"), env={"PORT": port})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "PORT" in lines[0] and "error" in lines[0], r.stderr
    assert not (tmp_path / "state").exists()


def _all_parsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``p`` and every parser below it (subcommands of subcommands)."""
    out = [p]
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for child in dict(a.choices).values():
                out.extend(_all_parsers(child))
    return out


@pytest.mark.parametrize(
    ("args", "abbreviated"),
    [
        (["validate", "--conf", "routes.yaml"], "--conf"),  # --config
        (["serve", "--state-d", "x"], "--state-d"),  # --state-dir
        (["deadletters", "list", "--js"], "--js"),  # --json, a nested command's
    ],
)
def test_an_abbreviated_option_is_a_usage_error(
    args: list[str], abbreviated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A prefix of an option is refused (exit 2), never taken for the option it abbreviates."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(args)
    assert exc.value.code == 2
    assert abbreviated in capsys.readouterr().err


def test_no_parser_takes_abbreviations() -> None:
    """Every command's parser, nested ones included, has allow_abbrev off."""
    parsers = _all_parsers(build_parser())
    assert len(parsers) > len(COMMANDS)
    assert [p.prog for p in parsers if p.allow_abbrev] == []


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2025-11-17", True),
        ("2025-W47", False),  # date.fromisoformat: the Monday of ISO week 47
        ("2025-W47-3", False),
        ("20251117", False),  # the basic format
        ("2025-11-17T00:00", False),
        (" 2025-11-17", False),
        ("2025-13-01", False),  # the right shape, no such date
        ("२०२५-११-१७", False),  # Devanagari digits
    ],
)
def test_a_date_option_takes_yyyy_mm_dd_only(text: str, ok: bool) -> None:
    """--start, --end, --as-of, --since: YYYY-MM-DD, as an event's game_date, nothing else."""
    from scoperouter.commands import iso_date

    if ok:
        assert iso_date(text).isoformat() == text
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="expected YYYY-MM-DD"):
            iso_date(text)
