"""The ``report`` section on events whose source routes.yaml names nowhere.

Invariant: every logged event with an ``unknown_source`` decision is counted under its
source (from the events table), so a table the registry forgot is visible in ``report``
text, ``--json`` and ``--html`` -- never a silent nothing. Events whose normalised form was
not logged are counted under :data:`NOT_LOGGED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scoperouter.execution_log.reader import LogData

NOT_LOGGED = "(event not logged)"
HINT = (
    "these sources route nothing: routes.yaml names them nowhere (no input, publishes or "
    "sources: entry). Add the processors that read them, or declare them under sources: "
    "to say nothing reads them (not_an_input)."
)


@dataclass(frozen=True, slots=True)
class UnknownSource:
    source: str
    events: int
    first_seen: datetime | None
    last_seen: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "events": self.events,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


def unknown_sources(data: LogData) -> list[UnknownSource]:
    """Unknown sources with their event counts, most events first (then by name)."""
    ids: dict[str, datetime | None] = {}
    for d in data.decisions:  # logs written before the skips were aggregated
        if d.reason == "unknown_source" and d.event_id is not None:
            ids.setdefault(d.event_id, d.decided_at)
    for rec in data.events:  # aggregated on the event row
        if any(reason == "unknown_source" for reason, _ in rec.skips):
            ids.setdefault(rec.event.event_id, rec.decided_at)
    if not ids:
        return []
    per: dict[str, list[datetime | None]] = {}
    logged: set[str] = set()
    for rec in data.events:
        eid = rec.event.event_id
        if eid in ids and eid not in logged:
            logged.add(eid)
            per.setdefault(rec.event.source, []).append(rec.decided_at)
    for eid, at in ids.items():
        if eid not in logged:
            per.setdefault(NOT_LOGGED, []).append(at)
    out = []
    for source, times in per.items():
        known = [t for t in times if t is not None]
        out.append(
            UnknownSource(
                source, len(times), min(known) if known else None, max(known) if known else None
            )
        )
    out.sort(key=lambda u: (-u.events, u.source))
    return out


def render_text(items: list[UnknownSource]) -> list[str]:
    """The text section (no lines when there is nothing to say)."""
    if not items:
        return []
    width = max(len(u.source) for u in items)
    lines = ["", f"unknown sources ({sum(u.events for u in items)} events): {HINT}"]
    for u in items:
        last = f"{u.last_seen:%Y-%m-%d %H:%M}" if u.last_seen else "-"
        lines.append(f"  {u.source.ljust(width)}  {u.events:>6} events  last {last}")
    return lines
