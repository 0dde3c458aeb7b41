"""``scoperouter lineage [--config FILE] [--code NAME=GLOB] [--jobs FILE | --bigquery PROJECT]``.

Derives what each processor reads -- from its SQL (files, or SQL string literals in Python
sources, located by ``lineage: {code: [...]}`` in routes.yaml or ``--code``), or from
BigQuery's INFORMATION_SCHEMA.JOBS (an export with ``--jobs``, live with ``--bigquery``), or
from what runs reported reading (``--runtime``: ``referenced_tables`` in the execution log) --
and diffs it against the registry: ``missing_input`` and ``field_not_listed`` (errors),
``unused_input`` (warning), ``unresolved`` (listed, never guessed). Output: text (default),
``--json`` or ``--format github`` (workflow annotations). Exit 1 when there is an error, or
with ``--strict`` an unresolved read (a glob matching no file, a file that cannot be read,
code that does not parse, a job attributed to no processor...: what lineage could not
check is then no pass).
Code globs are resolved against ``--root`` (default: the directory of the registry).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoperouter.commands import common, config_path, fail
from scoperouter.lineage import output
from scoperouter.lineage.analyse import Analysis, analyse_code, analyse_jobs
from scoperouter.lineage.jobs import JobsFetchError, fetch_jobs, load_export
from scoperouter.processor_registry.loader import load_config


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "lineage",
        help="prove routes.yaml covers what every processor reads (SQL, JOBS)",
        description="Diff each processor's reads (its SQL, or INFORMATION_SCHEMA.JOBS) "
        "against its inputs and fields in the registry.",
        parents=[common(config=True, json=True, log="read")],
    )
    p.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="NAME=GLOB",
        help="code of processor NAME (a .sql file or a .py file's SQL literals), GLOB relative "
        "to the registry's directory (or --root), not the current one; repeatable",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="base of code globs, routes.yaml's and --code's (default: the registry's "
        "directory; --root . for the current one)",
    )
    p.add_argument(
        "--processor", action="append", default=[], metavar="NAME", help="only these processors"
    )
    p.add_argument(
        "--jobs",
        type=Path,
        metavar="FILE",
        help="an INFORMATION_SCHEMA.JOBS export (JSON, JSON lines or CSV)",
    )
    p.add_argument(
        "--bigquery", metavar="PROJECT", help="read INFORMATION_SCHEMA.JOBS live from PROJECT"
    )
    p.add_argument(
        "--runtime",
        action="store_true",
        help="what runs reported reading (referenced_tables in the execution log, --log)",
    )
    p.add_argument("--region", default="us", help="JOBS region with --bigquery (default: us)")
    p.add_argument("--days", type=int, default=7, help="days of jobs with --bigquery (default: 7)")
    p.add_argument(
        "--label", default="processor", help="job label naming the processor (default: processor)"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="unresolved reads fail too (a glob matching no file, code that cannot be read "
        "or parsed, a table named at run time, a job attributed to no processor...): exit 1",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default=None,
        help="output format (default: text; --json = json)",
    )
    p.set_defaults(func=run)


NEEDS_BQ = "needs google-cloud-bigquery (pip install 'scoperouter[bigquery]')"


def _extra(specs: list[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for s in specs:
        name, sep, glob = s.partition("=")
        if not sep or not name or not glob:
            print(f"scoperouter lineage: error: --code takes NAME=GLOB, got {s!r}", file=sys.stderr)
            raise SystemExit(2)  # a usage error (SPEC section 4), like argparse's
        out[name] = (*out.get(name, ()), glob)
    return out


def run(args: argparse.Namespace) -> int:
    config = config_path(args)
    cfg = load_config(config, with_relations=False)
    registry = cfg.registry
    extra = _extra(args.code)
    unknown = sorted((set(extra) | set(args.processor)) - set(registry.processors))
    if unknown:
        return fail(args, f"unknown processor(s): {', '.join(unknown)}", 2)
    if args.runtime:
        from scoperouter.commands import log_path
        from scoperouter.execution_log.reader import LogInvalidError, LogMissingError, read_log
        from scoperouter.lineage.analyse import analyse_runtime

        log = log_path(args)
        try:
            data = read_log(log)
        except LogMissingError:
            return fail(args, f"no execution log at {log}; run scoperouter demo or serve first")
        except LogInvalidError as exc:
            return fail(args, str(exc))
        analysis: Analysis = analyse_runtime(registry, data.events, args.processor)
        route = "runtime"
    elif args.jobs or args.bigquery:
        try:
            rows = (
                load_export(args.jobs)
                if args.jobs
                else fetch_jobs(args.bigquery, args.region, args.days)
            )
        except ImportError:
            return fail(args, f"--bigquery {NEEDS_BQ}", 2)
        except JobsFetchError as exc:
            return fail(args, str(exc))
        except (OSError, ValueError) as exc:
            return fail(args, f"cannot read the JOBS export: {exc}")
        where = str(args.jobs) if args.jobs else f"{args.bigquery}:INFORMATION_SCHEMA.JOBS"
        analysis = analyse_jobs(registry, rows, where, args.label, args.processor)
        route = "jobs"
    else:
        root = args.root or Path(config).resolve().parent
        analysis = analyse_code(registry, root, extra, args.processor)
        route = "sql"
    findings = output.locate(analysis.findings, output.registry_origins(registry, config))
    fmt = args.format or ("json" if args.json else "text")
    shown = (findings, analysis.analysed, analysis.skipped, config, route)
    if fmt == "json":
        print(output.as_json(findings, analysis.analysed, analysis.skipped, config, route,
                             {"unattributed_jobs": analysis.unattributed_jobs}))  # fmt: skip
    elif fmt == "github":
        annotations = output.github(findings)
        if annotations:
            print(annotations)
        print(output.summary(*shown, analysis.unattributed_jobs), file=sys.stderr)
    else:
        print(output.text(*shown, analysis.unattributed_jobs))
    unresolved = sum(f.severity == "info" for f in findings)
    failed = [f"{unresolved} unresolved read{'s' * (unresolved != 1)}"] if unresolved else []
    if analysis.unattributed_jobs:
        failed.append(output.unattributed_jobs(analysis.unattributed_jobs))
    if args.strict and failed:
        print(f"{config}: strict mode fails on {' and '.join(failed)}", file=sys.stderr)
    return 1 if analysis.errors or (args.strict and failed) else 0
