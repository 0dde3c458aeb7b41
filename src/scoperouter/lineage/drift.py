"""Drift at run time: the tables a run really read (its BigQuery jobs' ``referenced_tables``,
sent in its completion event) that routes.yaml does not declare.

Invariant: pure functions, no I/O. A read is undeclared when the processor publishing the
event's source has no input for it and it is neither that processor's own output nor one of
its ``lineage.ignore_tables``; events of a source no processor publishes name no processor
and give nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scoperouter.lineage.globs import ignored as covers
from scoperouter.processor_registry.compiled import CompiledRegistry

MAX_TABLES = 1000  # a completion event naming more is truncated, never a rejection


def _name(t: Any) -> str | None:
    name = _table(t)
    if name is not None and not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape: no table, and no store,
            return None  # log or journal could keep the event with it (never a rejection)
    # (event_fields.encodable's check, inline: importing scoperouter.messages from here
    # is circular -- messages.normalize imports this module)
    return name


def _table(t: Any) -> str | None:
    if isinstance(t, str):
        parts = [p for p in t.strip("`").replace(":", ".").split(".") if p]
        return ".".join(parts[-2:]) if len(parts) >= 2 else None
    if isinstance(t, Mapping):
        ds = t.get("dataset_id") or t.get("datasetId")
        tb = t.get("table_id") or t.get("tableId")
        if isinstance(ds, str) and isinstance(tb, str) and ds and tb:
            return f"{ds}.{tb}"
    return None


def parse_referenced(raw: Any) -> tuple[str, ...] | None:
    """``referenced_tables`` of an event: ``dataset.table`` names (a project prefix is dropped;
    BigQuery's ``{project_id, dataset_id, table_id}`` objects are accepted), deduplicated and
    sorted; ``None`` when absent or not a list. Entries that name no table (or hold text
    UTF-8 cannot encode) are skipped."""
    if not isinstance(raw, list):
        return None
    names = {n for n in (_name(t) for t in raw[:MAX_TABLES]) if n}
    return tuple(sorted(names))


def publisher_of(registry: CompiledRegistry, source: str) -> str | None:
    for name, p in registry.processors.items():
        if p.publishes == source:
            return name
    return None


def undeclared_reads(
    registry: CompiledRegistry, source: str, referenced: tuple[str, ...] | None
) -> tuple[str | None, tuple[str, ...]]:
    """(the processor publishing ``source``, the referenced tables it does not declare)."""
    proc_name = publisher_of(registry, source)
    if proc_name is None or not referenced:
        return proc_name, ()
    proc = registry.processors[proc_name]
    lineage = proc.spec.lineage
    known = set(proc.inputs) | {source}
    ignored = lineage.ignore_tables if lineage else ()
    return proc_name, tuple(t for t in referenced if t not in known and not covers(t, ignored))


def runtime_reads(registry: CompiledRegistry, events: Any) -> dict[str, Any]:
    """Per processor, the tables its logged completion events say its runs read
    (``referenced_tables``): table-level :class:`~scoperouter.lineage.reads.Reads` for the
    lineage diff (route ``runtime``). ``events``: the execution log's event records."""
    from scoperouter.lineage.reads import Origin, Reads

    out: dict[str, Reads] = {}
    seen: set[str] = set()
    for rec in events:
        ev = rec.event
        if ev.event_id in seen or not ev.referenced_tables:
            continue
        seen.add(ev.event_id)
        proc = publisher_of(registry, ev.source)
        if proc is None:
            continue
        reads = out.setdefault(proc, Reads(columns_known=False))
        for t in ev.referenced_tables:
            reads.add_table(t, Origin(f"event {ev.event_id}"))
    return out
