"""``scoperouter validate [CONFIG ...] [--json] [--no-relation-data] [--strict]``.

Schema and semantic checks of one or more registries (default ``./routes.yaml``). Each
finding is printed to stderr as ``FILE:LINE:COL: error|warning: PATH: message``; a summary
line per file goes to stdout: ``valid (...)``, ``invalid (...)``, or with ``--strict`` and
warnings ``strict mode fails on N warnings (...)`` -- "valid" only for a file that passes. ``--json`` prints one object to stdout instead:
``{"valid": bool, "errors": [...], "warnings": [...]}`` where every issue has ``file``,
``line``, ``column``, ``path``, ``severity``, ``code`` and ``message``.

Warnings carry a code (docs/registry.md lists them) and can be silenced: ``--ignore CODE``
(repeatable) here, ``validate: {ignore: [CODE]}`` in the file, or a
``# scoperouter: ignore[CODE]`` comment on the reported line. Silenced warnings are
counted (and listed under ``"silenced"`` with ``--json``), never printed as warnings.

Exit 0 when valid (warnings allowed unless ``--strict``), 1 when invalid. Bad input --
binary garbage, an empty file, a list, an alias bomb -- is a positioned error, never a
traceback. ``--no-relation-data`` skips the relation CSV files (for a checkout where they
are generated at deploy time).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scoperouter.commands import DEFAULT_CONFIG, common
from scoperouter.errors import ConfigIssue
from scoperouter.processor_registry.loader import CheckResult, check_config
from scoperouter.processor_registry.models import WARNING_CODES


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "validate",
        help="check routes.yaml (schema + semantic checks)",
        description="Schema and semantic checks; errors as FILE:LINE:COL: error: PATH: message.",
        parents=[common(config=True, json=True)],
    )
    p.add_argument(
        "configs",
        nargs="*",
        metavar="CONFIG",
        default=[],
        help="registry file(s) (default: ./routes.yaml; --config FILE adds one)",
    )
    p.add_argument(
        "--no-relation-data",
        action="store_true",
        help="do not check or read the relation data files",
    )
    p.add_argument("--strict", action="store_true", help="warnings fail validation too")
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODE",
        choices=WARNING_CODES,
        help="silence a warning code in every file (repeatable): " + ", ".join(WARNING_CODES),
    )
    p.set_defaults(func=run)


def _check(path: str, with_relations: bool, ignore: list[str]) -> CheckResult:
    try:
        return check_config(path, with_relations=with_relations, ignore=ignore, check_code=True)
    except Exception as exc:  # never a traceback for any input: report and fail
        issue = ConfigIssue(
            f"internal error while validating ({type(exc).__name__}: {exc}); please report it",
            file=path,
            line=1,
            column=1,
            code="internal",
        )
        return CheckResult(path, (issue,))


def run(args: argparse.Namespace) -> int:
    configs = [*args.configs, *([args.config] if args.config else [])] or [DEFAULT_CONFIG]
    results = [_check(c, not args.no_relation_data, args.ignore) for c in configs]
    errors = [i for r in results for i in r.errors]
    warnings = [i for r in results for i in r.warnings]
    valid = not errors and not (args.strict and warnings)
    if args.json:
        out = {
            "valid": valid,
            "errors": [i.to_json() for i in errors],
            "warnings": [i.to_json() for i in warnings],
            "silenced": [i.to_json() for r in results for i in r.silenced],
        }
        print(json.dumps(out, indent=2))
        return 0 if valid else 1
    for r in results:
        for issue in r.issues:
            print(issue.format(), file=sys.stderr)
        n_err, n_warn = len(r.errors), len(r.warnings)
        warnings_n = f"{n_warn} warning{'s' * (n_warn != 1)}"
        silenced = f", {len(r.silenced)} silenced" if r.silenced else ""
        warned = warnings_n + silenced
        if r.valid and r.config is not None:
            reg = r.config.registry
            sizes = f"{len(reg.processors)} processors, {len(reg.relations)} relations"
            if args.strict and n_warn:  # exits 1: never "valid"
                print(f"{r.file}: strict mode fails on {warnings_n} ({sizes}{silenced})")
            else:
                print(f"{r.file}: valid ({sizes}, {warned})")
        else:
            print(f"{r.file}: invalid ({n_err} error{'s' * (n_err != 1)}, {warned})")
    return 0 if valid else 1
