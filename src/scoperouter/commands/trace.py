"""``scoperouter trace EVENT_ID | TRIGGER_ID [--state-dir DIR] [--config C] [--log PATH] [--json] [--html FILE]``.

One update's wave through the pipeline, read from the closed loop's ledger
(``<state-dir>/loop.json``, written by ``serve`` and ``demo --faults``): the event, the
triggers whose windows it joined, each trigger's attempts and completions (failures,
timeouts, re-dispatches, dead letters), the downstream events those completions published,
the triggers those joined, and so on to the end of the DAG. A trigger id starts the walk
at that trigger. With an execution log (``--log``, default
``./.scoperouter/execution_log.sqlite``, when present) each event also shows its
decisions. An explicit ``--config`` or ``--log`` must be readable (exit 1 otherwise). ``--json`` prints the tree; ``--html`` writes a small timeline.

Invariant: read-only; every trigger appears once in a trace (a trigger joined by several
events of the wave is shown at its first one and referred to afterwards).
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scoperouter.commands import common, config_path, log_path
from scoperouter.errors import ConfigError
from scoperouter.router.ledger import Entry
from scoperouter.router.ledger_json import entry_from_json

DEFAULT_STATE_DIR = Path(".scoperouter")


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "trace",
        help="an event's (or a trigger's) wave: triggers, attempts, completions, downstream",
        description="Follow an event or a trigger through the ledger of the closed loop.",
        parents=[common(config=True, log="read", json=True)],
    )
    p.add_argument("id", metavar="EVENT_ID|TRIGGER_ID")
    p.add_argument("--state-dir", type=Path, default=None, help="default ./.scoperouter")
    p.add_argument("--html", metavar="FILE", default=None, help="also write an HTML timeline")
    p.set_defaults(func=run)


def load_entries(state_dir: Path, hint: str = "") -> list[Entry]:
    """The ledger's entries in ``state_dir``; without a ledger a ConfigError that says why
    there may be none, and ``hint``."""
    from scoperouter.runtime.loop_store import FileLoopState

    try:
        snap = FileLoopState(state_dir).load()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if snap is None:
        raise ConfigError(
            f"no ledger in {state_dir} (loop.json): the closed loop is off there (no "
            "run_retries, completion_timeout, retry_backoff or barrier in routes.yaml) or "
            f"has not run yet (serve, demo --faults){hint}"
        )
    where = f"{state_dir}/loop.json"
    ledger = snap.get("ledger", {})
    if not isinstance(ledger, dict):
        raise ConfigError(f"{where}: ledger must be an object, not {type(ledger).__name__}")
    entries = ledger.get("entries", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: ledger entries must be a list, not {type(entries).__name__}")
    out = []
    for n, x in enumerate(entries, 1):
        try:
            out.append(entry_from_json(x))
        except ValueError as exc:
            raise ConfigError(f"{where}: entry {n}: {exc}") from exc
    return out


def _phases(args: argparse.Namespace) -> dict[str, int]:
    """Each processor's phase, from the registry. Without ``--config``, ``./routes.yaml``
    is optional (phases show as ``?``); an explicit ``--config`` must load (ConfigError)."""
    from scoperouter.processor_registry.loader import load_config

    path = Path(config_path(args))
    if not args.config:
        if not path.is_file():
            return {}
        try:
            reg = load_config(path, with_relations=False).registry
        except ConfigError:
            return {}
    else:
        reg = load_config(path, with_relations=False).registry
    return {n: p.phase for n, p in reg.processors.items()}


def _decisions(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Decisions per event id from the execution log (``--log``), when there is one."""
    from scoperouter.execution_log.reader import LogInvalidError, read_log

    path = log_path(args)
    if not path.is_file():
        if args.log is not None:  # asked for: never silently traced without it
            raise ConfigError(f"no execution log at {path}", file=str(path))
        return {}
    try:
        data = read_log(path)
    except (OSError, LogInvalidError) as exc:
        raise ConfigError(f"cannot read execution log {path}: {exc}") from exc
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in data.decisions:
        if r.event_id is not None:
            out[r.event_id].append(
                {
                    "processor": r.processor,
                    "action": r.action,
                    "scope": r.scope,
                    "reason": r.reason,
                    "date": r.game_date.isoformat() if r.game_date else None,
                }
            )
    for e in data.events:  # skips have no rows of their own: one aggregate per reason
        for reason, n in e.skips:
            out[e.event.event_id].append(
                {"processor": None, "action": "skip", "reason": reason, "count": n}
            )
    return out


def build_trace(
    root: str,
    entries: list[Entry],
    phases: dict[str, int],
    decisions: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The wave from ``root`` (an event id or a trigger id) as a tree of plain values;
    ``decisions``: the execution log's decisions per event id (optional)."""
    by_id = {e.trigger_id: e for e in entries}
    caused: dict[str, list[Entry]] = defaultdict(list)
    produced_by: dict[str, str] = {}
    for e in entries:
        for ev in e.trigger.caused_by:
            caused[ev].append(e)
        for a in e.history:
            if a.event_id is not None:
                produced_by.setdefault(a.event_id, e.trigger_id)
    seen: set[str] = set()

    def trig(e: Entry) -> dict[str, Any]:
        t = e.trigger
        node: dict[str, Any] = {
            "trigger_id": t.trigger_id,
            "processor": t.processor,
            "phase": phases.get(t.processor),
            "date": t.game_date.isoformat(),
            "scope": t.scope,
            "entity_ids": list(t.entity_ids) if t.entity_ids is not None else None,
            "caused_by": list(t.caused_by),
            "state": e.phase,
            "attempts": e.attempt,
            "history": [
                {
                    "at": a.at,
                    "what": a.what,
                    "attempt": a.attempt,
                    "detail": a.detail,
                    "event_id": a.event_id,
                }
                for a in e.history
            ],
        }
        if t.trigger_id in seen:
            node["see_above"] = True
            return node
        seen.add(t.trigger_id)
        events: list[dict[str, Any]] = []
        for a in e.history:
            if a.event_id is not None and a.event_id not in {x["event_id"] for x in events}:
                events.append(event(a.event_id))
        node["events"] = events
        return node

    def event(eid: str) -> dict[str, Any]:
        kids = sorted(caused.get(eid, ()), key=lambda e: (e.opened_at, e.trigger.processor))
        node: dict[str, Any] = {"event_id": eid, "produced_by": produced_by.get(eid)}
        if decisions and eid in decisions:
            node["decisions"] = decisions[eid]
        node["triggers"] = [trig(e) for e in kids]
        return node

    if root in by_id:
        return {"root": root, "kind": "trigger", "trigger": trig(by_id[root])}
    if root not in caused and root not in produced_by:
        raise ConfigError(f"{root}: no trigger or event with this id in the ledger")
    return {"root": root, "kind": "event", "event": event(root)}


def _when(at: float) -> str:
    if at > 1e9:
        return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")
    h, rem = divmod(int(at), 3600)
    return f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}"


def walk_triggers(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Every trigger node of the tree, in walk order (first appearance only)."""
    out: list[dict[str, Any]] = []

    def ev(e: dict[str, Any]) -> None:
        for t in e["triggers"]:
            tr(t)

    def tr(t: dict[str, Any]) -> None:
        if t.get("see_above"):
            return
        out.append(t)
        for e in t.get("events", []):
            ev(e)

    if tree["kind"] == "trigger":
        tr(tree["trigger"])
    else:
        ev(tree["event"])
    return out


def text(tree: dict[str, Any]) -> str:
    lines: list[str] = []

    def ev(e: dict[str, Any], ind: str) -> None:
        by = f" (published by {e['produced_by']})" if e["produced_by"] else ""
        lines.append(f"{ind}event {e['event_id']}{by}")
        if e.get("decisions"):
            runs = sorted({d["processor"] for d in e["decisions"] if d["action"] == "run"})
            skips = sum(d.get("count", 1) for d in e["decisions"] if d["action"] != "run")
            lines.append(f"{ind}  decisions: run {', '.join(runs) or 'nothing'}; {skips} skip")
        for t in e["triggers"]:
            tr(t, ind + "  ")

    def tr(t: dict[str, Any], ind: str) -> None:
        ph = f"phase {t['phase']} " if t["phase"] is not None else ""
        scope = f"{len(t['entity_ids'])} ids" if t["entity_ids"] is not None else "full date"
        head = (
            f"{ind}-> {t['processor']} ({ph}{t['date']}, {scope}) {t['trigger_id']}: {t['state']}"
        )
        if t.get("see_above"):
            lines.append(head + " (see above)")
            return
        lines.append(
            head + f", {t['attempts']} attempt(s), joined by {len(t['caused_by'])} event(s)"
        )
        steps = "; ".join(
            f"{_when(h['at'])} {h['what']} #{h['attempt']}"
            + (f" ({h['detail']})" if h["detail"] and h["what"] != "success" else "")
            for h in t["history"]
        )
        lines.append(f"{ind}   {steps}")
        for e in t.get("events", []):
            ev(e, ind + "   ")

    if tree["kind"] == "trigger":
        tr(tree["trigger"], "")
    else:
        ev(tree["event"], "")
    trigs = walk_triggers(tree)
    phases = sorted({t["phase"] for t in trigs if t["phase"] is not None})
    lines.append(
        f"{len(trigs)} triggers, phases {', '.join(map(str, phases)) or '?'}; "
        f"{sum(t['attempts'] - 1 for t in trigs)} re-dispatches, "
        f"{sum(1 for t in trigs if t['state'] == 'dead')} dead letters"
    )
    return "\n".join(lines)


def timeline_html(tree: dict[str, Any]) -> str:
    trigs = walk_triggers(tree)
    ats = [h["at"] for t in trigs for h in t["history"]] or [0.0]
    t0, t1 = min(ats), max(ats)
    span = max(1.0, t1 - t0)
    color = {3: "#2980b9", 4: "#27ae60", 5: "#8e44ad", 6: "#d35400"}
    rows = []
    for t in trigs:
        hs = [h["at"] for h in t["history"]]
        x0, x1 = (min(hs) - t0) / span * 600, (max(hs) - t0) / span * 600
        marks = "".join(
            f'<span class="m {html.escape(h["what"])}" style="left:{(h["at"] - t0) / span * 600:.1f}px" '
            f'title="{html.escape(h["what"])} #{h["attempt"]} {_when(h["at"])}"></span>'
            for h in t["history"]
        )
        c = color.get(t["phase"] or 0, "#7f8c8d")
        rows.append(
            f"<tr><td>{t['phase'] or '?'}</td><td>{html.escape(t['processor'])}</td><td>{t['date']}</td>"
            f'<td>{html.escape(t["state"])}</td><td class="tl"><span class="b" style="left:{x0:.1f}px;'
            f'width:{max(2.0, x1 - x0):.1f}px;background:{c}"></span>{marks}</td></tr>'
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scoperouter trace {html.escape(tree["root"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}td{{padding:.2rem .5rem;border-bottom:1px solid #eee}}
.tl{{position:relative;width:620px;height:1rem}}.b{{position:absolute;top:.3rem;height:.4rem;opacity:.6}}
.m{{position:absolute;top:.15rem;width:3px;height:.7rem;background:#333}}.m.failed,.m.timed_out,.m.dead_letter{{background:#c0392b}}
.m.success{{background:#27ae60}}</style></head><body>
<h1>trace {html.escape(tree["root"])}</h1><p>{len(trigs)} triggers from {_when(t0)} to {_when(t1)}; marks:
dispatch (black), success (green), failure / timeout / dead letter (red).</p>
<table><tr><th>phase</th><th>processor</th><th>date</th><th>state</th><th>timeline</th></tr>
{"".join(rows)}</table></body></html>
"""


def run(args: argparse.Namespace) -> int:
    entries = load_entries(args.state_dir or DEFAULT_STATE_DIR)
    tree = build_trace(args.id, entries, _phases(args), _decisions(args))
    if args.json:
        print(json.dumps(tree))
    else:
        print(text(tree))
    if args.html:
        try:
            Path(args.html).write_text(timeline_html(tree), encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.html}: {exc.strerror}", file=sys.stderr)
            return 1
        if not args.json:
            print(f"html timeline: {args.html}")
    return 0
