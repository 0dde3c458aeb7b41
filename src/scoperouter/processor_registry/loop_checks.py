"""Semantic checks of the closed-loop keys (docs/ledger.md): a barrier's
``min_complete.critical`` names processors upstream of it.

Invariant: findings only (no behaviour); an unknown or non-upstream name is an error
(``bad_barrier``), since the barrier would wait for something that never runs.
"""

from __future__ import annotations

from scoperouter.processor_registry.findings import Report
from scoperouter.processor_registry.models import RoutesSpec


def _upstream(spec: RoutesSpec, name: str) -> set[str]:
    publishers = {p.publishes: n for n, p in spec.processors.items() if p.publishes}
    seen: set[str] = set()
    todo = [name]
    while todo:
        for inp in spec.processors[todo.pop()].inputs:
            up = publishers.get(inp.source)
            if up is not None and up not in seen and up != name:
                seen.add(up)
                todo.append(up)
    return seen


def check_barriers(spec: RoutesSpec, r: Report) -> None:
    d = spec.defaults.barrier
    if d is not None and d.min_complete is not None:
        for i, c in enumerate(d.min_complete.critical):
            if c not in spec.processors:
                r.add(
                    ("defaults", "barrier", "min_complete", "critical", i),
                    f"unknown processor {c!r}",
                    code="bad_barrier",
                )
    for name, p in spec.processors.items():
        b = p.barrier
        if b is None or b.min_complete is None:
            continue
        ups = _upstream(spec, name)
        for i, c in enumerate(b.min_complete.critical):
            if c not in ups:
                what = "is not upstream of it" if c in spec.processors else "is not a processor"
                r.add(
                    ("processors", name, "barrier", "min_complete", "critical", i),
                    f"{c!r} {what}: the barrier would wait for it forever",
                    code="bad_barrier",
                )
