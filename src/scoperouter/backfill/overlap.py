"""Which backfills must not run at the same time. Pure: plans and the registry in, no I/O.

Each backfill orders its own runs (a run waits for the upstream runs it reads); two
backfills running at once order nothing between them. When one rewrites what the other's
runs read -- or both write the same (processor, date) -- a run of one may read an upstream
date the other is rewriting and finish after the other's correct run of the same date:
its stale rows are the last written, and both report done.

Invariant: two plans conflict when a processor ``a`` of one and ``b`` of the other are the
same processor, or ``b`` is an ancestor of ``a`` (``a`` reads ``b``'s output, through any
path), and the dates ``b`` is rewritten on, ``[start, last_day[b]]``, meet the dates ``a``'s
runs read of it, ``[start - reach, last_day[a]]``: ``reach`` is the longest sum of ``days``
lookbacks and inputs' ``ahead`` days (a run on D reads the upstream's rows dated D, which
its runs up to A days earlier wrote) along a path from ``b`` to ``a`` (0 for the same
processor, which writes the same dates; unbounded with an ``occurrences`` lookback on the
path, whose dates depend on who played). Processors unrelated in the DAG never conflict, nor ranges too far apart. A
processor the registry does not know (a stored plan made with another routes.yaml) is
compared by name only: it conflicts with the same processor, never through lineage.
"""

from __future__ import annotations

from datetime import date, timedelta

from scoperouter.backfill.plan import BackfillPlan, ahead_days
from scoperouter.processor_registry.compiled import CompiledRegistry

# per processor a: {b: reach in days (None: unbounded)} for b == a and every ancestor of a
Reach = dict[str, dict[str, int | None]]


def reach_back(registry: CompiledRegistry) -> Reach:
    """How far back (days) each processor's runs read each of its ancestors (module doc)."""
    out: Reach = {}
    for a in registry.topo_order:
        lb = registry.processors[a].lookback
        own: int | None = 0 if lb is None else (lb.days if lb.days else None)
        back: dict[str, int | None] = {a: 0}
        for u in registry.upstream_of.get(a, ()):
            step = None if own is None else own + ahead_days(registry, a, u)
            for b, r in out[u].items():
                cand = None if step is None or r is None else step + r
                if b not in back:
                    back[b] = cand
                else:
                    old = back[b]
                    back[b] = None if old is None or cand is None else max(old, cand)
        out[a] = back
    return out


def _reads(reader: BackfillPlan, a: str, writer: BackfillPlan, b: str, reach: int | None) -> bool:
    """Do ``reader``'s runs of ``a`` read a date ``writer`` rewrites ``b`` on?"""
    w_lo, w_hi = writer.request.start, writer.last_day[b]
    r_hi = reader.last_day[a]
    r_lo = date.min if reach is None else reader.request.start - timedelta(days=reach)
    return w_lo <= r_hi and w_hi >= r_lo


def conflict(reach: Reach, new: BackfillPlan, other: BackfillPlan) -> tuple[str, str] | None:
    """(a processor of ``new``, one of ``other``) whose runs collide (module docstring), or None."""
    for a in new.processors:
        for b in other.processors:
            if b in reach.get(a, ()) and _reads(new, a, other, b, reach[a][b]):
                return a, b
            if a in reach.get(b, ()) and _reads(other, b, new, a, reach[b][a]):
                return a, b
    return None
