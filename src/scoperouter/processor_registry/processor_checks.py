"""Semantic checks of one processor: its granularity, its inputs' ``map`` / ``also_map``
relation paths, its ``lookback.via``, and the ``unmapped_input`` warnings.

Invariant: findings only, each positioned under ``processors.NAME``; a path is checked
against the well-formed relations' (from, to) types :mod:`semantic` computed, and a
malformed relation is reported where it is declared, never again at its use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from scoperouter.processor_registry.compiled import DATE_GRANULARITY
from scoperouter.processor_registry.findings import Report, did_you_mean
from scoperouter.processor_registry.models import InputSpec, RoutesSpec
from scoperouter.processor_registry.relation_use import relations_from_to
from scoperouter.processor_registry.yaml_positions import YamlPath


def check_processor(
    spec: RoutesSpec,
    pname: str,
    r: Report,
    entities: set[str],
    types: Mapping[str, tuple[str, str]],
) -> None:
    p = spec.processors[pname]
    base: YamlPath = ("processors", pname)
    gran = p.granularity
    gran_ok = gran == DATE_GRANULARITY or gran in entities
    if not gran_ok:
        r.add(
            (*base, "granularity"),
            f"unknown granularity {gran!r}: neither a declared entity type nor 'date'"
            f"{did_you_mean(gran, entities | {DATE_GRANULARITY})}",
            code="unknown_entity",
        )
    _check_ignore_tables(p.lineage.ignore_tables if p.lineage else (), p.inputs, base, r)
    seen: dict[str, int] = {}
    for i, inp in enumerate(p.inputs):
        ipath: YamlPath = (*base, "inputs", i)
        if inp.source in seen:
            r.add(
                (*ipath, "source"),
                f"source {inp.source!r} is listed twice (first as inputs[{seen[inp.source]}]); "
                "a processor lists a source once",
                code="duplicate_source",
            )
        else:
            seen[inp.source] = i
        for kind, paths in (("map", inp.map), ("also_map", inp.also_map)):
            for etype, hops in (paths or {}).items():
                mpath: YamlPath = (*ipath, kind, etype)
                if etype not in entities:
                    r.add(
                        mpath,
                        f"unknown entity type {etype!r} in {kind}{did_you_mean(etype, entities)}",
                        code="unknown_entity",
                        key=True,
                    )
                    continue
                if gran == DATE_GRANULARITY:
                    r.add(
                        mpath,
                        f"{kind} is ignored: the processor has granularity 'date' "
                        "(never entity-level)",
                        code="map_ignored",
                        severity="warning",
                        key=True,
                    )
                    continue
                if etype == gran and kind == "map":
                    r.add(
                        mpath,
                        f"map is ignored: events naming {etype!r} already match the "
                        "granularity (identity wins; also_map adds to it)",
                        code="map_ignored",
                        severity="warning",
                        key=True,
                    )
                    continue
                _check_path(
                    etype,
                    hops,
                    gran if gran_ok else None,
                    mpath,
                    r,
                    types,
                    set(spec.relations),
                    kind=kind,
                )
    if p.lookback is not None and p.lookback.via is not None:
        via = p.lookback.via
        vpath: YamlPath = (*base, "lookback", "via")
        if via not in spec.relations:
            r.add(
                vpath,
                f"unknown relation {via!r}{did_you_mean(via, set(spec.relations))}",
                code="unknown_relation",
            )
        elif via in types and gran_ok and gran != DATE_GRANULARITY and types[via][0] != gran:
            f, t = types[via]
            r.add(
                vpath,
                f"lookback relation {via!r} goes from {f} to {t}; it must start at the "
                f"processor's granularity {gran!r} (a dated relation from {gran})",
                code="bad_lookback",
            )
    if gran_ok and gran != DATE_GRANULARITY:
        _warn_unmapped(spec, pname, r, types)


def _check_ignore_tables(
    ignored: Sequence[str], inputs: Sequence[InputSpec], base: YamlPath, r: Report
) -> None:
    """An ``ignore_tables`` entry naming one of the processor's inputs contradicts it: the
    input is routed on, so lineage must check the columns read of it (``fields``), which
    an ignored table is exempt from."""
    from scoperouter.lineage.globs import ignored as covers

    for j, entry in enumerate(ignored):
        for i, inp in enumerate(inputs):
            if covers(inp.source, (entry,)):
                named = (
                    repr(entry)
                    if entry == inp.source
                    else f"{entry!r} covers {inp.source!r}, which"
                )
                r.add(
                    (*base, "lineage", "ignore_tables", j),
                    f"{named} is an input (inputs[{i}]) and in lineage.ignore_tables: an "
                    "input is read for its rows, never ignored; remove it from ignore_tables",
                    code="ignored_input",
                )
                break


def _check_path(
    etype: str,
    hops: tuple[str, ...],
    gran: str | None,
    mpath: YamlPath,
    r: Report,
    types: Mapping[str, tuple[str, str]],
    declared: set[str],
    *,
    kind: str = "map",
) -> None:
    if not hops:
        r.add(mpath, "empty relation path: name at least one relation", code="bad_path", key=True)
        return
    at = etype
    for j, rel in enumerate(hops):
        if rel not in types:
            if rel in declared:
                return  # a malformed relation, reported where it is declared
            r.add(
                (*mpath, j),
                f"unknown relation {rel!r}{did_you_mean(rel, declared)}",
                code="unknown_relation",
            )
            return
        f, t = types[rel]
        if f != at:
            if j == 0:
                msg = (
                    f"relation {rel!r} goes from {f} to {t}, but the path starts at the {kind} "
                    f"key's type {etype!r}"
                )
            else:
                msg = (
                    f"path does not chain: {hops[j - 1]!r} ends at {at!r} but {rel!r} starts "
                    f"at {f!r}"
                )
            r.add((*mpath, j), msg, code="bad_path")
            return
        at = t
    if gran is not None and at != gran:
        r.add(
            (*mpath, len(hops) - 1),
            f"path ends at {at!r} but the processor's granularity is {gran!r}",
            code="bad_path",
        )


def _warn_unmapped(
    spec: RoutesSpec, pname: str, r: Report, types: Mapping[str, tuple[str, str]]
) -> None:
    p = spec.processors[pname]
    gran = p.granularity
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, inp in enumerate(p.inputs):
        for etype in sorted(spec.entities):
            if etype == gran or (inp.map and etype in inp.map):
                continue
            if len(relations_from_to(types, etype, gran)) != 1:
                by_type[etype].append(i)
    for etype, idx in sorted(by_type.items()):
        cands = relations_from_to(types, etype, gran)
        why = (
            f"no relation from {etype} to {gran}"
            if not cands
            else f"{len(cands)} relations from {etype} to {gran} ({', '.join(cands)})"
        )
        srcs = [p.inputs[i].source for i in idx]
        shown = ", ".join(srcs[:3]) + (f" and {len(srcs) - 3} more" if len(srcs) > 3 else "")
        r.add(
            ("processors", pname, "inputs", idx[0], "source"),
            f"events naming {etype} ids run the full date (unmapped_entity_type) for input "
            f"{shown}: {why}; add 'map: {{{etype}: [...]}}' to scope them",
            code="unmapped_input",
            severity="warning",
        )
