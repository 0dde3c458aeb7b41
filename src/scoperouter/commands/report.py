"""``scoperouter report``: waste and savings per processor from the execution log, with a
recommendation (entity-level pays or not), as text, ``--json`` or a self-contained ``--html``
page; ``--what-if KEY=VALUE`` re-plans the logged events under other settings.

``--bigquery PROJECT.DATASET.pipeline_execution_log`` reads the production log from
BigQuery instead of the SQLite file (``execution_log.bigquery_reader``).

Every report has a rollout section (``execution_log.rollout``): figures split by mode
(shadow / live) and go / no-go per processor, naming the next processor to move live.
``--run-history FILE`` (an export of the pipeline's ``processor_run_history``) or
``--run-history-bigquery PROJECT.DATASET.TABLE`` (the table itself) give it the recorded
durations of the real date-level runs (``execution_log.run_history``).

Exit codes: 0 (also for an empty log, which it says), 1 when there is no log file, the file
is not a readable execution log, the BigQuery log cannot be read (invalid table id, no
client library, failed query), the config is invalid, or the ``--html`` file cannot be
written (one line on stderr; with ``--json`` also ``{"error": ..., "detail": ...}`` on
stdout -- for ``--html`` instead of the report; the text report is printed all the same), 2
usage.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from scoperouter.commands import common, iso_date, log_path
from scoperouter.errors import ConfigError
from scoperouter.execution_log import bigquery_reader
from scoperouter.execution_log.analysis import ProcessorInfo, Report, build_report
from scoperouter.execution_log.bigquery import ExecutionLogError
from scoperouter.execution_log.legend import COLUMNS, headline
from scoperouter.execution_log.reader import LogData, LogInvalidError, LogMissingError, read_log
from scoperouter.execution_log.rollout import Rollout, build_rollout
from scoperouter.execution_log.run_history import History, RunHistoryError, map_history
from scoperouter.execution_log.undeclared_reads import render_text as render_undeclared
from scoperouter.execution_log.undeclared_reads import undeclared
from scoperouter.execution_log.unknown_sources import UnknownSource, unknown_sources
from scoperouter.execution_log.unknown_sources import render_text as render_unknown
from scoperouter.execution_log.whatif import what_if_notes, what_if_rows
from scoperouter.processor_registry.loader import LoadedConfig, load_config, load_relations
from scoperouter.processor_registry.models import ReportSpec
from scoperouter.processor_registry.relations import RelationStore


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="waste, savings and recommendations from the execution log",
        description="Per processor: runs per day, entity vs date runs, average entities per run, "
        "waste %, processing time saved, and whether entity-level processing pays "
        "(thresholds from routes.yaml 'report:'). --config defaults to ./routes.yaml if "
        "present (thresholds, phases; --what-if needs it); for a log scoperouter demo "
        "wrote, the registry and relation data the demo ran with.",
        parents=[common(config=True, log="read", json=True)],
    )
    p.add_argument(
        "--bigquery",
        default=None,
        metavar="PROJECT.DATASET.TABLE",
        help="read the BigQuery execution log instead (the pipeline_execution_log table; its "
        "sibling events and completions tables are read too; not with --log); needs "
        "scoperouter[bigquery]",
    )
    p.add_argument(
        "--billing-project",
        default=None,
        metavar="PROJECT",
        help="with --bigquery: the project the query jobs run in (default: the table's project)",
    )
    p.add_argument(
        "--since", type=iso_date, default=None, help="only game dates on or after YYYY-MM-DD"
    )
    p.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write a self-contained HTML report",
    )
    p.add_argument(
        "--what-if",
        dest="what_if",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="re-plan the logged events with changed settings: max_entities=N, "
        "window.quiet=60s, window.max_wait=5m, or PROCESSOR.<key>=...",
    )
    hist = p.add_mutually_exclusive_group()
    hist.add_argument(
        "--run-history",
        type=Path,
        default=None,
        metavar="FILE",
        help="the pipeline's own run history (processor_run_history export: JSON lines or "
        "CSV): hours saved from the recorded durations of its date-level runs",
    )
    hist.add_argument(
        "--run-history-bigquery",
        default=None,
        metavar="PROJECT.DATASET.TABLE",
        help="read that run history from BigQuery (e.g. "
        "my-project.nba_reference.processor_run_history); needs scoperouter[bigquery]",
    )
    p.set_defaults(func=run)


def _config(args: argparse.Namespace, data: LogData, need_relations: bool) -> LoadedConfig | None:
    """--config, else ./routes.yaml, else for a log the demo wrote the registry and relation
    data it ran with, else None."""
    path = Path(args.config) if args.config else None
    if path is None:
        if Path("routes.yaml").is_file():
            path = Path("routes.yaml")
        elif data.demo is not None:
            from scoperouter.commands.demo import config_of_demo_log

            return config_of_demo_log(data.demo, need_relations)
        else:
            return None
    return load_config(path, with_relations=need_relations)


def _where(args: argparse.Namespace) -> str:
    """The log read: the BigQuery table id or the SQLite path."""
    return str(args.bigquery) if args.bigquery is not None else str(args.log)


def _fail(args: argparse.Namespace, error: str, detail: str) -> int:
    """One line on stderr (and with --json an {"error", "detail"} object on stdout); exit 1."""
    print(f"error: {detail}", file=sys.stderr)
    if args.json:
        print(json.dumps({"error": error, "detail": detail, "log": _where(args)}))
    return 1


def _read(args: argparse.Namespace) -> LogData | int:
    """The log's records, or the exit code after a one-line error."""
    if args.bigquery is None:
        try:
            return read_log(args.log, since=args.since)
        except LogMissingError:
            return _fail(
                args,
                "no_log",
                f"no execution log at {args.log}; run scoperouter demo or serve first",
            )
        except LogInvalidError as exc:
            return _fail(args, "invalid_log", str(exc))
    try:
        project = bigquery_reader.table_project(args.bigquery)
        if args.billing_project is not None and not bigquery_reader.PROJECT_ID.fullmatch(
            args.billing_project
        ):
            raise ExecutionLogError(f"not a Google Cloud project id: {args.billing_project!r}")
    except ExecutionLogError as exc:
        return _fail(args, "invalid_table", str(exc))
    try:
        client = bigquery_reader.default_client(args.billing_project or project)
    except ExecutionLogError as exc:
        return _fail(args, "no_client", str(exc))
    try:
        return bigquery_reader.read_bigquery_log(client, args.bigquery, since=args.since)
    except ExecutionLogError as exc:
        return _fail(args, "query_failed", str(exc))
    except LogInvalidError as exc:
        return _fail(args, "invalid_log", str(exc))


def run(args: argparse.Namespace) -> int:
    if args.bigquery is not None and args.log is not None:  # a usage error, as argparse's
        print("scoperouter report: error: --bigquery: not allowed with --log", file=sys.stderr)
        raise SystemExit(2)
    args.log = log_path(args)
    data = _read(args)
    if isinstance(data, int):
        return data
    cfg = _config(args, data, need_relations=bool(args.what_if))
    if args.what_if and cfg is None:
        print("error: --what-if needs the registry: pass --config routes.yaml", file=sys.stderr)
        return 1
    if data.empty:
        msg = "log is empty: no decisions recorded yet" + (
            f" since {args.since}" if args.since else ""
        )
        if args.json:
            print(json.dumps({"empty": True, "message": msg, "log": _where(args)}))
        else:
            print(f"{msg} ({_where(args)})")
        return 0
    thresholds = cfg.registry.spec.report if cfg is not None else ReportSpec()
    info = (
        {
            n: ProcessorInfo(p.phase, p.granularity, p.spec.engineering_hours)
            for n, p in cfg.registry.processors.items()
        }
        if cfg is not None
        else None
    )
    report = build_report(data, thresholds=thresholds, processors=info)
    unknown = unknown_sources(data)
    drift = undeclared(data, cfg.registry) if cfg is not None else []
    history = _history(args, cfg, data)
    if isinstance(history, int):
        return history
    rollout = build_rollout(
        data,
        report,
        modes={n: p.mode for n, p in cfg.registry.processors.items()} if cfg else None,
        history=history,
        registry=cfg.registry if cfg is not None else None,
        relations=_coverage_relations(args, cfg, history),
    )
    wi: dict[str, Any] | None = None
    if args.what_if:
        from scoperouter.execution_log.whatif import parse_what_if, what_if

        assert cfg is not None
        wi = what_if(cfg.registry, cfg.relations, data, parse_what_if(args.what_if))
        if wi["loop_not_modelled"] is not None:
            print(f"warning: {wi['loop_not_modelled']}", file=sys.stderr)
    html_error: str | None = None
    if args.html is not None:
        from scoperouter.execution_log.html import render_html

        page = render_html(report, what_if=wi, unknown_sources=unknown, rollout=rollout.to_json())
        html_error = _write_html(args.html, page)
        if html_error is not None and args.json:  # stdout is one JSON document: the error
            return _fail(args, "html_unwritable", html_error)
    if args.json:
        out = report.to_json()
        out["unknown_sources"] = [u.to_json() for u in unknown]
        out["undeclared_reads"] = [u.to_json() for u in drift]
        out["log"] = _where(args)
        out["rollout"] = rollout.to_json()
        if wi is not None:
            out["what_if"] = wi
        print(json.dumps(out, indent=2, sort_keys=False))
    else:
        print(render_text(report, wi, unknown))
        if drift:
            print(render_undeclared(drift))
        print(render_rollout(rollout))
        if args.html is not None and html_error is None:
            print(f"\nHTML report written to {args.html}")
    if html_error is not None:  # the text report is printed all the same
        print(f"error: {html_error}", file=sys.stderr)
        return 1
    return 0


def _write_html(path: Path, page: str) -> str | None:
    """Write ``page`` to ``path`` (its directories created); None, or why it could not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def _coverage_relations(
    args: argparse.Namespace, cfg: LoadedConfig | None, history: History | None
) -> RelationStore | None:
    """The relation data the rollout's coverage re-plans skipped events with, when a
    processor has a lookback or an ahead input (else a skip's dates are its event's own) and
    a run history is given (coverage is judged only against it); None when it cannot be
    read (a skip then covers its event's own dates and ahead days only, never less safe)."""
    if cfg is None or history is None:
        return None
    if args.what_if:
        return cfg.relations
    procs = cfg.registry.processors.values()
    if not any(
        p.lookback is not None or any(i.ahead_days for i in p.inputs.values()) for p in procs
    ):
        return None
    try:
        return load_relations(cfg.registry)
    except ConfigError:
        return None


def _history(
    args: argparse.Namespace, cfg: LoadedConfig | None, data: LogData
) -> History | int | None:
    """The mapped run history (None without one), or the exit code after a one-line error."""
    if args.run_history is None and args.run_history_bigquery is None:
        return None
    if cfg is None:
        return _fail(args, "no_config", "--run-history needs the registry: pass --config")
    publishes = {n: p.publishes for n, p in cfg.registry.processors.items()}
    from scoperouter.execution_log import run_history

    try:
        if args.run_history is not None:
            rows = run_history.read_file(args.run_history)
        else:
            dates = [d.game_date for d in data.decisions if d.game_date is not None]
            project = bigquery_reader.table_project(args.run_history_bigquery)
            rows = []  # no decision row (every event skipped): no date to ask about
            if dates:
                client = bigquery_reader.default_client(args.billing_project or project)
                rows = run_history.read_bigquery(
                    client, args.run_history_bigquery, min(dates), max(dates)
                )
        return map_history(rows, publishes)
    except (RunHistoryError, ExecutionLogError) as exc:
        return _fail(args, "run_history", str(exc))


def render_rollout(r: Rollout) -> str:
    """The rollout section of the text report: by mode, go / no-go, the next to go live."""
    lines = ["", "rollout (shadow: planned and logged, no target called):"]
    for mode, m in r.by_mode.items():
        lines.append(
            f"  {mode:6} {len(m['processors'])} processor(s), {m['runs']} runs, "
            f"{m['saved_hours_per_week']:.2f} h saved/week"
        )
    if r.history is not None:
        h = r.history
        lines.append(
            f"  run history: {h['rows']} rows, {h['runs']} finished date-level runs mapped"
            + (
                f" ({h['duplicate_rows']} repeated rows of a run counted once)"
                if h.get("duplicate_rows")
                else ""
            )
            + (
                f"; unmapped: {', '.join(h['unmapped_processors'])}"
                if h["unmapped_processors"]
                else ""
            )
        )
    else:
        lines.append("  no run history given (--run-history): savings from the fitted cost model")
    for p in r.processors:
        missing = (
            f"; no run history for {', '.join(p.missing_history_days)} (fitted model)"
            if p.missing_history_days and p.history_days
            else ""
        )
        lines.append(
            f"  - {p.processor} [{p.mode}]: {p.decision} -- {p.saved_hours_per_week:.2f} h "
            f"saved/week from {p.baseline}{missing}; {p.why}"
        )
    lines.append(f"next to move live: {r.next_live or 'none'} -- {r.next_live_why}")
    return "\n".join(lines)


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    if v is None or math.isinf(v) or math.isnan(v):
        return "never" if v is not None and math.isinf(v) else "-"
    return fmt.format(v)


# the text table's legend: its short labels with their meaning
LEGEND: tuple[tuple[str, str], ...] = tuple((t, m) for t, _h, m in COLUMNS if t)


def render_text(
    report: Report, wi: dict[str, Any] | None = None, unknown: list[UnknownSource] | None = None
) -> str:
    s = report.to_json()["summary"]
    th = report.thresholds
    first, last = report.first_decision, report.last_decision
    # the window of decisions it covers: a pruned log's starts at its retention
    span = f": {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC" if first and last else ""
    lines = [
        f"execution log: {s['events']} events, {s['decisions']} decisions, {s['runs']} runs "
        f"({s['runs_are']}), {report.days_observed} day(s){span}",
        headline(report),
        f"rule: entity-level pays when date-level waste > {th.waste_pct:g}%, wasted hours > "
        f"{th.wasted_hours_per_week:g}/week and payback < {th.payback_weeks:g} weeks",
        "",
    ]
    head = (
        "processor",
        "ph",
        "runs/d",
        "ent",
        "date",
        "avg ent",
        "waste%",
        "date-lvl%",
        "h/wk",
        "saved h",
        "payback",
        "recommendation",
    )
    rows = [head]
    for p in report.processors:
        rows.append(
            (
                p.processor,
                str(p.phase or ""),
                f"{p.runs_per_day:.1f}",
                str(p.entity_runs),
                str(p.date_runs),
                _f(p.avg_entities_per_run),
                _f(p.waste_pct),
                _f(p.date_level_waste_pct),
                _f(p.date_level_wasted_hours_per_week, "{:.2f}"),
                f"{p.saved_hours:.3f}",
                _f(p.payback_weeks),
                p.recommendation,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(widths[i]) if i in (0, 11) else c.rjust(widths[i]) for i, c in enumerate(r)
            ).rstrip()
        )
    lines.append("")
    width = max(len(k) for k, _ in LEGEND)
    lines += [f"  {k:<{width}}  {v}" for k, v in LEGEND]
    lines.append("")
    for p in report.processors:
        lines.append(f"- {p.processor}: {p.recommendation} -- {p.why}")
    lines += render_unknown(unknown or [])
    if wi is not None:
        lines += [
            "",
            f"what-if {', '.join(f'{k}={v}' for k, v in wi['changes'].items())} over {wi['events']} logged events:",
            f"  {'':24}{'current':>12}{'what-if':>12}",
        ]
        for label, a, b in what_if_rows(wi):
            lines.append(f"  {label:24}{a!s:>12}{b!s:>12}")
        lines += [f"  {n}" for n in what_if_notes(wi)]
    return "\n".join(lines)
