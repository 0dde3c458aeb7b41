"""The ``report`` section "undeclared reads": tables runs read that routes.yaml does not
declare as inputs of the processor (from completion events' ``referenced_tables``).

Invariant: computed from the logged events and the registry alone: every logged completion
event of a processor's ``publishes`` source that names a table the processor's inputs lack
is counted under (processor, table), with the first and last time it was seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scoperouter.execution_log.reader import LogData
from scoperouter.lineage.drift import undeclared_reads
from scoperouter.processor_registry.compiled import CompiledRegistry

HINT = (
    "runs read these tables, but routes.yaml does not list them as inputs: a change there "
    "never re-runs the processor. Add the input (run `scoperouter lineage` on its code), or "
    "name the table in the processor's lineage.ignore_tables if it is read on purpose."
)


@dataclass(frozen=True, slots=True)
class UndeclaredRead:
    processor: str
    table: str
    events: int
    first_seen: datetime | None
    last_seen: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "processor": self.processor,
            "table": self.table,
            "events": self.events,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


def undeclared(data: LogData, registry: CompiledRegistry) -> list[UndeclaredRead]:
    """Undeclared (processor, table) reads, most events first (then by name)."""
    per: dict[tuple[str, str], list[datetime | None]] = {}
    seen: set[str] = set()
    for rec in data.events:
        ev = rec.event
        if ev.event_id in seen or not ev.referenced_tables:
            continue
        seen.add(ev.event_id)
        proc, tables = undeclared_reads(registry, ev.source, ev.referenced_tables)
        for t in tables:
            per.setdefault((str(proc), t), []).append(rec.decided_at)
    out = []
    for (proc, table), times in per.items():
        known = [t for t in times if t is not None]
        out.append(
            UndeclaredRead(
                proc, table, len(times), min(known, default=None), max(known, default=None)
            )
        )
    out.sort(key=lambda u: (-u.events, u.processor, u.table))
    return out


def render_text(rows: list[UndeclaredRead]) -> str:
    lines = ["undeclared reads (tables runs read that routes.yaml does not declare):"]
    lines.append(f"  {'PROCESSOR':<30} {'TABLE':<45} {'EVENTS':>6}  LAST SEEN")
    for u in rows:
        last = u.last_seen.isoformat(timespec="seconds") if u.last_seen else "-"
        lines.append(f"  {u.processor:<30} {u.table:<45} {u.events:>6}  {last}")
    lines.append(f"  {HINT}")
    return "\n".join(lines)
