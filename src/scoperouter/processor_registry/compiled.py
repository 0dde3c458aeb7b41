"""Compile a validated :class:`RoutesSpec` once into immutable lookup tables.

The planner never scans processors per event: ``by_source`` maps a source to the inputs
that read it, and every input carries its precomputed relation path per entity type.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.field_names import field_key
from scoperouter.processor_registry.models import (
    LookbackSpec,
    ProcessorSpec,
    RoutesSpec,
    TargetSpec,
    parse_duration,
)

DATE_GRANULARITY = "date"

# Path resolution outcome per (input, event entity type): a tuple of relation names
# (empty tuple = identity) or None = unmapped.
Path_ = tuple[str, ...]


@dataclass(frozen=True)
class CompiledRelation:
    name: str
    from_type: str
    to_type: str
    base: str  # the relation whose rows are stored (itself unless inverse)
    inverse: bool
    every_day: bool = False  # its dated rows cover every date of their span (the base's)


@dataclass(frozen=True)
class CompiledInput:
    processor: str
    source: str
    # the names as compared (field_names.field_key: stripped, lower-case), like an Event's
    fields: frozenset[str] | None
    ignore_fields: frozenset[str] | None
    # event entity type (declared name) -> relation path to the processor's granularity,
    # or None when no path exists (unmapped_entity_type). Empty tuple = identity.
    paths: Mapping[str, Path_ | None]
    index: int  # position in the processor's inputs (for YAML paths in messages)
    # event entity type -> the input's also_map path (ids ALSO mapped along it, united with
    # ``paths``' result); only types with an entry, never for a date-granularity processor
    also_paths: Mapping[str, Path_] = field(default_factory=lambda: MappingProxyType({}))
    # ``ahead: {days: N}``: the event's rows are dated up to N days after its date, so a
    # run also covers D+1..D+N (0: no ahead)
    ahead_days: int = 0

    def paths_of(self, etype: str | None) -> tuple[Path_, ...] | None:
        """Every path the ids of ``etype`` follow: the normal one, then its also_map path.
        None when the type is unmapped (``unmapped_entity_type``; also_map cannot replace
        the normal mapping, or the named ids themselves would be lost)."""
        path = self.paths.get(etype) if etype is not None else None
        if path is None:
            return None
        also = self.also_paths.get(etype) if etype is not None else None
        return (path,) if also is None or also == path else (path, also)


@dataclass(frozen=True)
class CompiledProcessor:
    name: str
    phase: int
    granularity: str
    inputs: Mapping[str, CompiledInput]  # by source
    publishes: str | None
    max_entities: int
    lookback: LookbackSpec | None
    quiet_s: float
    max_wait_s: float
    target: TargetSpec
    spec: ProcessorSpec
    mode: str = "live"  # "live" | "shadow": shadow plans and logs but calls no target

    @property
    def is_date_granularity(self) -> bool:
        return self.granularity == DATE_GRANULARITY


@dataclass(frozen=True)
class CompiledRegistry:
    spec: RoutesSpec
    file: str
    base_dir: Path
    processors: Mapping[str, CompiledProcessor]
    processor_names: tuple[str, ...]  # sorted
    by_source: Mapping[str, tuple[CompiledInput, ...]]
    sources: frozenset[str]  # every source named (inputs and publishes)
    by_table: Mapping[str, tuple[str, ...]]  # bare table name -> full source names
    entity_types: frozenset[str]
    entity_keys: Mapping[str, str]  # 'player' and 'players' -> 'player'
    date_field: str  # the event key of the date (default game_date)
    relations: Mapping[str, CompiledRelation]
    relations_between: Mapping[tuple[str, str], tuple[str, ...]]
    topo_order: tuple[str, ...]  # processors, upstream first
    upstream_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    downstream_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    plurals: Mapping[str, str] = field(default_factory=dict)  # 'person' -> 'people'
    # source -> entity type of the flat id lists its events carry: the ``sources:``
    # declaration, else the granularity of the processors that publish it when they all
    # have the same one (never 'date')
    source_entity: Mapping[str, str] = field(default_factory=dict)

    def entity_type_of_source(self, source: str) -> str | None:
        """The entity type a flat ``entities_changed`` list of ``source`` names, or None."""
        return self.source_entity.get(source)

    def entity_type_of_key(self, key: str) -> str | None:
        """The declared entity type an event key names (``players`` -> ``player``)."""
        return self.entity_keys.get(key)

    def resolve_source(self, name: str) -> str | None:
        """A full source name, or the unique source whose table part is ``name``.

        Returns None when unknown. Raises ValueError when a bare name is ambiguous.
        """
        if name in self.sources:
            return name
        cands = self.by_table.get(name, ())
        if len(cands) == 1:
            return cands[0]
        if len(cands) > 1:
            raise ValueError(f"bare table name {name!r} is ambiguous: {', '.join(cands)}")
        return None


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``. Raises KeyError naming an unset variable."""
    envmap = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        val = envmap.get(name)
        if val is None or (val == "" and default is not None):
            if default is not None:
                return default
            raise KeyError(name)
        return val

    return _ENV_RE.sub(sub, text)


def _relation_types(spec: RoutesSpec) -> dict[str, CompiledRelation]:
    out: dict[str, CompiledRelation] = {}
    for name, r in spec.relations.items():
        if r.inverse_of is None:
            assert r.from_ is not None and r.to is not None
            out[name] = CompiledRelation(name, r.from_, r.to, name, False, r.every_day)
    for name, r in spec.relations.items():
        if r.inverse_of is not None:
            base = out.get(r.inverse_of)
            if base is None:
                raise ConfigError(
                    [
                        ConfigIssue(
                            f"inverse_of names unknown relation {r.inverse_of!r}",
                            path=("relations", name, "inverse_of"),
                        )
                    ]
                )
            out[name] = CompiledRelation(
                name, base.to_type, base.from_type, base.name, True, base.every_day
            )
    return out


def plural_of(name: str, spec: RoutesSpec) -> str:
    """The key events use for several ids of an entity type: its ``plural``, else name+s."""
    declared = spec.entities[name].plural
    return declared if declared is not None else name + "s"


def entity_key_table(spec: RoutesSpec) -> dict[str, str]:
    """Event entity key -> declared type: every singular name, then every plural (an
    explicit ``plural`` or name+s) that is not itself a declared name."""
    keys = {et: et for et in spec.entities}
    for et in spec.entities:
        keys.setdefault(plural_of(et, spec), et)
    return keys


def resolve_path(
    etype: str,
    granularity: str,
    explicit: Mapping[str, tuple[str, ...]] | None,
    relations_between: Mapping[tuple[str, str], tuple[str, ...]],
) -> Path_ | None:
    if granularity == DATE_GRANULARITY:
        return None
    if etype == granularity:
        return ()
    if explicit and etype in explicit:
        return tuple(explicit[etype])
    single = relations_between.get((etype, granularity), ())
    if len(single) == 1:
        return (single[0],)
    return None


def compile_registry(
    spec: RoutesSpec, *, file: str = "<string>", base_dir: Path | None = None
) -> CompiledRegistry:
    """Build the lookup tables. Assumes :func:`semantic.check` passed (it reports positions);
    inconsistencies found here still raise ConfigError, without positions."""
    rels = _relation_types(spec)
    between: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rels.values():
        between[(r.from_type, r.to_type)].append(r.name)
    relations_between = {k: tuple(sorted(v)) for k, v in between.items()}

    entity_keys = entity_key_table(spec)

    d = spec.defaults
    processors: dict[str, CompiledProcessor] = {}
    by_source: dict[str, list[CompiledInput]] = defaultdict(list)
    sources: set[str] = set()
    for pname in sorted(spec.processors):
        p = spec.processors[pname]
        window = p.window or d.window
        inputs: dict[str, CompiledInput] = {}
        for i, inp in enumerate(p.inputs):
            paths = {
                et: resolve_path(et, p.granularity, inp.map, relations_between)
                for et in spec.entities
            }
            also = (
                {et: tuple(hops) for et, hops in inp.also_map.items()}
                if inp.also_map and p.granularity != DATE_GRANULARITY
                else {}
            )
            ci = CompiledInput(
                processor=pname,
                source=inp.source,
                # folded once here, as the event's names are when read (field_names)
                fields=frozenset(map(field_key, inp.fields)) if inp.fields is not None else None,
                ignore_fields=frozenset(map(field_key, inp.ignore_fields))
                if inp.ignore_fields is not None
                else None,
                paths=MappingProxyType(paths),
                index=i,
                also_paths=MappingProxyType(also),
                ahead_days=inp.ahead.days if inp.ahead is not None else 0,
            )
            if inp.source in inputs:
                raise ConfigError(
                    [
                        ConfigIssue(
                            f"source {inp.source!r} listed twice",
                            path=("processors", pname, "inputs", i),
                        )
                    ]
                )
            inputs[inp.source] = ci
            by_source[inp.source].append(ci)
            sources.add(inp.source)
        if p.publishes:
            sources.add(p.publishes)
        processors[pname] = CompiledProcessor(
            name=pname,
            phase=p.phase,
            granularity=p.granularity,
            inputs=MappingProxyType(inputs),
            publishes=p.publishes,
            max_entities=p.max_entities if p.max_entities is not None else d.max_entities,
            lookback=p.lookback,
            quiet_s=parse_duration(window.quiet),
            max_wait_s=parse_duration(window.max_wait),
            target=p.target or d.target,
            spec=p,
            mode=p.mode or d.mode,
        )

    # a flat list's type is its publisher's granularity only when every processor publishing
    # the source agrees (a `duplicate_publishes` warning allows several): otherwise one
    # publisher's ids would be read as another's type -- a team's "LAL" as a player
    publisher_grans: dict[str, set[str]] = defaultdict(set)
    for cp in processors.values():
        if cp.publishes:
            publisher_grans[cp.publishes].add(cp.granularity)
    source_entity: dict[str, str] = {
        src: next(iter(grans))
        for src, grans in publisher_grans.items()
        if len(grans) == 1 and DATE_GRANULARITY not in grans
    }
    for sname, sspec in spec.sources.items():
        sources.add(sname)
        if sspec.entity is not None:
            source_entity[sname] = sspec.entity

    by_table: dict[str, list[str]] = defaultdict(list)
    for s in sorted(sources):
        table = s.rsplit(".", 1)[-1]
        if table != s:
            by_table[table].append(s)

    # publishes DAG: edge A -> B when B reads what A publishes
    publishers: dict[str, list[str]] = defaultdict(list)
    for pname, cp in processors.items():
        if cp.publishes:
            publishers[cp.publishes].append(pname)
    downstream: dict[str, set[str]] = {n: set() for n in processors}
    upstream: dict[str, set[str]] = {n: set() for n in processors}
    for pname, cp in processors.items():
        for src in cp.inputs:
            for up in publishers.get(src, ()):
                downstream[up].add(pname)
                upstream[pname].add(up)
    order = topo_sort(downstream)
    if order is None:
        raise ConfigError([ConfigIssue("the publishes graph has a cycle", path=("processors",))])

    return CompiledRegistry(
        spec=spec,
        file=file,
        base_dir=base_dir or Path("."),
        processors=MappingProxyType(processors),
        processor_names=tuple(sorted(processors)),
        by_source=MappingProxyType({k: tuple(v) for k, v in by_source.items()}),
        sources=frozenset(sources),
        by_table=MappingProxyType({k: tuple(v) for k, v in by_table.items()}),
        entity_types=frozenset(spec.entities),
        entity_keys=MappingProxyType(entity_keys),
        date_field=spec.date_field,
        plurals=MappingProxyType({et: plural_of(et, spec) for et in spec.entities}),
        relations=MappingProxyType(rels),
        relations_between=MappingProxyType(relations_between),
        topo_order=tuple(order),
        upstream_of=MappingProxyType({k: tuple(sorted(v)) for k, v in upstream.items()}),
        downstream_of=MappingProxyType({k: tuple(sorted(v)) for k, v in downstream.items()}),
        source_entity=MappingProxyType(source_entity),
    )


def topo_sort(edges: Mapping[str, set[str]] | Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """Kahn's algorithm, ties broken by name. None when there is a cycle."""
    indeg: dict[str, int] = {n: 0 for n in edges}
    for _n, outs in edges.items():
        for m in outs:
            indeg[m] = indeg.get(m, 0) + 1
    ready = sorted(n for n, k in indeg.items() if k == 0)
    out: list[str] = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for m in sorted(edges.get(n, ())):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
                ready.sort()
    return out if len(out) == len(indeg) else None


def find_cycle(edges: Mapping[str, set[str]] | Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """One cycle as a list of nodes (first repeated at the end), or None.

    Iterative depth-first search (an explicit stack), so a chain of any length -- a
    registry of thousands of processors -- never exhausts Python's recursion limit."""
    color: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(edges):
        if color.get(root, 0):
            continue
        path: list[str] = [root]
        todo: list[list[str]] = [sorted(edges.get(root, ()), reverse=True)]
        color[root] = 1
        while todo:
            if not todo[-1]:
                color[path.pop()] = 2
                todo.pop()
                continue
            m = todo[-1].pop()
            c = color.get(m, 0)
            if c == 1:
                return [*path[path.index(m) :], m]
            if c == 0:
                color[m] = 1
                path.append(m)
                todo.append(sorted(edges.get(m, ()), reverse=True))
    return None


TargetKind = Literal["pubsub", "http", "outbox"]
