"""Which declared relations a registry uses (SPEC section 2: "`relation_data` is required
when any relation is used").

Invariant: pure, on a schema-valid :class:`RoutesSpec`; a relation counts as used when the
planner may look up its rows -- a hop of a ``map`` or ``also_map`` path, a lookback's
``via``, or the single relation (inverses counted) from an entity type to a non-``date``
granularity that some input of that processor has no ``map`` entry for. An inverse
relation's use is reported under its own name (its rows are its base relation's).
"""

from __future__ import annotations

from collections.abc import Mapping

from scoperouter.processor_registry.compiled import DATE_GRANULARITY
from scoperouter.processor_registry.models import RoutesSpec


def relations_from_to(types: Mapping[str, tuple[str, str]], a: str, b: str) -> list[str]:
    """The relations (base and inverse) from entity type ``a`` to ``b``, sorted: exactly one
    is the single relation SPEC section 2 follows without a ``map``."""
    return sorted(n for n, (f, t) in types.items() if f == a and t == b)


def used_relations(spec: RoutesSpec, types: Mapping[str, tuple[str, str]]) -> list[str]:
    """The declared relations the registry uses, sorted. ``types``: (from, to) of every
    well-formed relation (base and inverse)."""
    used: set[str] = set()
    for p in spec.processors.values():
        gran = p.granularity
        if p.lookback is not None and p.lookback.via is not None:
            used.add(p.lookback.via)
        for inp in p.inputs:
            for paths in (inp.map, inp.also_map):
                for hops in (paths or {}).values():
                    used.update(hops)
        if gran == DATE_GRANULARITY:
            continue
        for et in spec.entities:
            if et == gran or all(inp.map and et in inp.map for inp in p.inputs):
                continue
            single = relations_from_to(types, et, gran)
            if len(single) == 1:
                used.add(single[0])
    return sorted(used & set(spec.relations))


__all__ = ["relations_from_to", "used_relations"]
