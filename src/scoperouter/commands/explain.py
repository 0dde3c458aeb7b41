"""``scoperouter explain EVENT|- [--config C] [--as-of DATE] [--json]``.

One event (a JSON file, or ``-`` for stdin) through the planner: a decision for every
processor of the registry, sorted by processor name. ``--json`` prints
``{"event": {...normalised...}, "decisions": [...]}`` (SPEC section 4). ``--as-of``
(default: today) caps lookback dates. Exit 0, or 1 for an invalid config or event.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import date
from typing import Any

from scoperouter.commands import iso_date
from scoperouter.messages.normalize import event_to_json, parse_event_bytes
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import plan


def read_input(path: str) -> bytes | None:
    """Bytes of a file, or of stdin for ``-``; None (after a one-line error) when unreadable."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None


def format_dates(dates: tuple[date, ...]) -> str:
    if not dates:
        return "-"
    if len(dates) == 1:
        return dates[0].isoformat()
    return f"{dates[0].isoformat()}..{dates[-1].isoformat()} ({len(dates)} dates)"


def format_table(decisions: tuple[Decision, ...], plurals: Mapping[str, str] | None = None) -> str:
    """The readable table: processor, action, scope, count, dates, reason. An entity scope
    reads as the entity type's plural (the registry's ``plurals``, else name + s)."""
    header = ("PROCESSOR", "ACTION", "SCOPE", "COUNT", "DATES", "REASON")
    rows: list[tuple[str, ...]] = [header]
    for d in decisions:
        if d.scope == "entities" and d.entity_ids is not None:
            scope = (plurals or {}).get(d.entity_type or "", f"{d.entity_type}s")
            count = str(len(d.entity_ids))
        else:
            scope = d.scope or "-"
            count = "all" if d.scope == "date" else "-"
        rows.append((d.processor, d.action, scope, count, format_dates(d.dates), d.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for d in decisions:
        if d.entity_ids:
            shown = ", ".join(d.entity_ids[:20]) + (" ..." if len(d.entity_ids) > 20 else "")
            lines.append(f"  {d.processor}: {shown}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    data = read_input(args.event)
    if data is None:
        return 1
    cfg = load_config(args.config)
    event = parse_event_bytes(data, cfg.registry)  # EventError -> main() prints, exit 1
    as_of: date = args.as_of or date.today()
    decisions = plan(cfg.registry, cfg.relations, event, as_of)
    if args.json:
        out: dict[str, Any] = {
            "event": event_to_json(event, cfg.registry.date_field),
            "decisions": [d.to_json() for d in decisions],
        }
        print(json.dumps(out, indent=2))
    else:
        runs = sum(1 for d in decisions if d.action == "run")
        target = (
            event.game_date.isoformat()
            if event.game_date
            else (f"{event.start_date}..{event.end_date}")
        )
        print(
            f"event {event.event_id} ({event.shape}): {event.source} {target} "
            f"status={event.status} -> {runs} of {len(decisions)} processors run (as of {as_of})"
        )
        print(format_table(decisions, cfg.registry.plurals))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain",
        help="one event -> a decision for every processor",
        description="Route one event through the planner and print a decision per processor.",
    )
    p.add_argument("event", metavar="EVENT", help="event JSON file, or - for stdin")
    p.add_argument("--config", default="routes.yaml", help="registry (default ./routes.yaml)")
    p.add_argument(
        "--as-of", type=iso_date, default=None, help="cap lookback dates (default today)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
