"""The ``scoperouter`` console script.

Each subcommand lives in its own module under :mod:`scoperouter.commands` exposing
``register(subparsers) -> None`` (which sets ``func`` on its parser) -- so commands can be
developed independently. Exit codes: 0 ok, 1 invalid config or input, 2 usage error.

A run that names its command imports that command's module only (``scoperouter validate``
starts in about half the time: the daemon's modules stay unloaded); anything else (no
command, an option first, a name that is not a command) builds the parser of every command,
so usage errors and ``--help`` list them all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from typing import Any

from scoperouter.errors import ConfigError, EventError

COMMANDS = (
    "validate",
    "explain",
    "replay",
    "test",
    "serve",
    "report",
    "schema",
    "graph",
    "demo",
    "lineage",
    "sources",
    "trace",
    "deadletters",
    "backfill",
    "outbox",
)


class _Parser(argparse.ArgumentParser):
    """A parser that takes no abbreviations: ``--state`` of one command is never read as
    another's ``--state-dir``, nor a typo as the option it happens to prefix. Subcommands'
    parsers (nested ones too) are of this class: argparse makes them of their parent's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser(names: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser with the subcommands ``names`` (default: every command)."""
    parser = _Parser(
        prog="scoperouter",
        description="Declarative, entity-scoped routing for multi-phase data pipelines.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in names:
        try:
            mod = importlib.import_module(f"scoperouter.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"scoperouter.commands.{name}":
                raise
            continue
        mod.register(sub)
    return parser


def _parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The named command's parser alone when ``argv`` starts with a command that is there;
    else every command's."""
    if argv and argv[0] in COMMANDS and find_spec(f"scoperouter.commands.{argv[0]}"):
        return build_parser((argv[0],))
    return build_parser()


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = _parser_for(args_in)
    args = parser.parse_args(args_in)  # exits 2 on usage errors
    want_json = bool(getattr(args, "json", False))
    try:
        rc: int = args.func(args)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue.format(), file=sys.stderr)
        if want_json:
            print(
                json.dumps({"error": "invalid_config", "issues": [i.to_json() for i in exc.issues]})
            )
        return 1
    except EventError as exc:
        print(f"error: invalid event: {exc}", file=sys.stderr)
        if want_json:
            from scoperouter.commands import invalid_event_json

            print(invalid_event_json(exc.reason, exc.detail, exc.event_id))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
