"""The ``scoperouter`` console script.

Each subcommand lives in its own module under :mod:`scoperouter.commands` exposing
``register(subparsers) -> None`` (which sets ``func`` on its parser) -- so commands can be
developed independently. Exit codes: 0 ok, 1 invalid config or input, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scoperouter",
        description="Declarative, entity-scoped routing for multi-phase data pipelines.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"scoperouter.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"scoperouter.commands.{name}":
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
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
            print(
                json.dumps(
                    {
                        "error": "invalid_event",
                        "reason": exc.reason,
                        "detail": exc.detail,
                        "event_id": exc.event_id,
                    }
                )
            )
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
