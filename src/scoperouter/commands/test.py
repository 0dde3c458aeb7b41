"""``scoperouter test [PATH ...] [--config C] [--as-of DATE] [--json] [--junit FILE] [-v]``.

Route tests (docs/route-tests.md): each case of each file routes its event(s) through the
planner -- and with ``cascade:`` through the whole downstream wave -- and compares the
decisions with the ones it expects. PATH is a test file, or a directory standing for its
``routes.tests.yaml`` and ``tests/routes/*.yaml`` (default: the current directory).

Prints a diff per failed case and a summary line (``--json``: one object on stdout);
``--junit FILE`` also writes JUnit XML for CI. ``--config`` tests every file against that
registry instead of its own; ``--as-of`` overrides every case's as-of date. Exit 0 when
every case passes, 1 when one fails or a file does not load (its errors are positioned,
``FILE:LINE:COL``), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from scoperouter.commands import common, fail
from scoperouter.errors import ConfigError
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.routetests.check import CaseResult, check_file
from scoperouter.routetests.load import LoadedFile, discover, load_file
from scoperouter.routetests.output import FileError, to_json, to_junit, to_text


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "test",
        help="run route tests: events and the decisions routes.yaml must make",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common(config=True, as_of=True, json=True)],
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="test file or directory (default: ./routes.tests.yaml and ./tests/routes/*.yaml)",
    )
    p.add_argument("--junit", metavar="FILE", type=Path, default=None, help="also write JUnit XML")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    p.set_defaults(func=run)


def _with_as_of(loaded: LoadedFile, args: argparse.Namespace) -> LoadedFile:
    if args.as_of is None:
        return loaded
    cases = tuple(
        replace(c, events=tuple((lbl, ev, args.as_of) for lbl, ev, _ in c.events))
        for c in loaded.cases
    )
    return replace(loaded, cases=cases)


def run(args: argparse.Namespace) -> int:
    files = discover(args.paths)  # ConfigError (nothing found) -> main(): exit 1
    results: list[CaseResult] = []
    errors: list[FileError] = []
    cache: dict[Path, LoadedConfig] = {}
    for f in files:
        try:
            loaded = load_file(f, args.config, cache)
        except ConfigError as exc:
            errors.append(FileError(str(f), exc.issues))
            continue
        results += check_file(_with_as_of(loaded, args))
    if args.junit is not None:
        try:
            args.junit.parent.mkdir(parents=True, exist_ok=True)
            args.junit.write_text(to_junit(results, errors), encoding="utf-8")
        except OSError as exc:
            return fail(args, f"cannot write {args.junit}: {exc.strerror}")
    ok = not errors and all(r.status == "passed" for r in results)
    if args.json:
        print(json.dumps(to_json(results, errors), indent=2))
    else:
        print(to_text(results, errors, args.verbose))
    return 0 if ok else 1
