"""Semantic checks of a schema-valid registry (SPEC section 2, "Validation").

Everything the JSON Schema cannot say: names that must refer to declared things, relation
paths that must chain, the ``publishes`` graph that must be a DAG, relation data files that
must exist. Every finding is positioned through the :class:`PositionedDocument` the spec
was loaded from, so messages read ``FILE:LINE:COL: error: PATH: message``.

Errors fail validation; warnings do not:

* an input whose events can name an entity type with no path to the processor's
  granularity (those events run the full date, reason ``unmapped_entity_type``);
* a ``map`` entry that can never apply (date granularity, or identity), or an
  ``also_map`` entry on a date-granularity processor (``map_ignored``);
* a target referencing ``${VAR}`` (no default) that is unset in the validating
  environment -- a warning at validate time, because CI and laptops rarely carry production
  variables; ``serve`` resolves targets at start-up and fails there (exit 1);
* the same source published by two processors; a processor reading the output of a
  processor of a later phase;
* a barrier that can wait for an upstream with no ``completion_timeout``: one lost
  completion would hold it forever (``barrier_may_wait_forever``, :mod:`loop_checks`);
* a barrier with no upstream publisher to wait for (``barrier_without_upstream``);
* two names of one input's ``fields`` / ``ignore_fields`` that differ only by case
  (``field_case``: changed fields are matched ignoring case, so both name one field);
* an input source close to (but more than one edit from) a published one
  (``similar_source``). One edit away from any source the registry names is an error
  (``near_miss_source``) unless the name is declared, and so is a ``publishes`` no input
  reads one edit away from a read source nothing publishes (:mod:`source_checks`).

Warnings carry a code from :data:`~scoperouter.processor_registry.models.WARNING_CODES`;
:mod:`~scoperouter.processor_registry.ignores` silences them per line or per code. The checks
of one processor (granularity, map paths, lookback) live in :mod:`processor_checks`.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from scoperouter.errors import ConfigIssue
from scoperouter.processor_registry import source_checks
from scoperouter.processor_registry.compiled import DATE_GRANULARITY, find_cycle
from scoperouter.processor_registry.findings import Report, close_match, did_you_mean
from scoperouter.processor_registry.loop_checks import (
    check_barrier_upstreams,
    check_barrier_waits,
    check_barriers,
)
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.processor_checks import check_processor
from scoperouter.processor_registry.relation_use import used_relations
from scoperouter.processor_registry.target_checks import target_findings
from scoperouter.processor_registry.yaml_positions import PositionedDocument, YamlPath

__all__ = ["check", "close_match", "did_you_mean"]

# keys of an event (and a trigger) that date_field may not take over (game_date may: default)
_EVENT_KEYS = frozenset(
    {
        "event_id", "source", "start_date", "end_date", "status", "affected_entities",
        "changed_fields", "priority", "correlation_id", "produced_at", "timestamp",
        "skip_downstream", "record_count", "metadata", "entities_changed", "trigger_id",
        "processor", "scope", "entity_type", "entity_ids", "reason", "caused_by", "fired_at",
        "date_field", "execution_id", "source_table", "analytics_table", "output_table",
        "output_dataset", "event_type", "success", "phase", "caused_by_more",
        "trigger_message_id", "missed_entities", "referenced_tables",
    }
)  # fmt: skip
# the named parameters of the Pub/Sub client's ``publish(self, topic, data, ordering_key,
# retry, timeout, **attrs)``: a trigger's attributes go to it as keyword arguments, the date
# under date_field, so one of these names would never reach the message as an attribute
_PUBLISH_KEYWORDS = frozenset({"self", "topic", "data", "ordering_key", "retry", "timeout"})


def check(
    spec: RoutesSpec,
    doc: PositionedDocument,
    *,
    file: str,
    base_dir: Path,
    check_files: bool = True,
    env: Mapping[str, str] | None = None,
    check_code: bool = False,
) -> list[ConfigIssue]:
    """All semantic findings (errors and warnings), in document order. ``check_code``: each
    ``lineage.code`` glob matches a file (``validate`` only: the router's deployment need not
    hold the pipeline's code)."""
    r = Report(doc, file)
    entities = set(spec.entities)
    if DATE_GRANULARITY in entities:
        r.add(
            ("entities", DATE_GRANULARITY),
            "'date' is reserved (granularity 'date' means never entity-level); rename the "
            "entity type",
            code="reserved_name",
            key=True,
        )
    if spec.date_field in _EVENT_KEYS:
        r.add(
            ("date_field",),
            f"date_field {spec.date_field!r} is already an event key with another meaning; "
            "name the key your events carry the date in (e.g. business_date)",
            code="reserved_name",
        )
    elif spec.date_field in _PUBLISH_KEYWORDS:  # registry-wide: any target may be Pub/Sub
        r.add(
            ("date_field",),
            f"date_field {spec.date_field!r} is a parameter of the Pub/Sub client's publish(), "
            "which takes a trigger's attributes as keyword arguments: a pubsub target could "
            "not send the date attribute; name the key your events carry the date in "
            "(e.g. business_date)",
            code="reserved_name",
        )
    _check_plurals(spec, r)
    types = _check_relations(spec, r, entities)
    _check_relation_data(spec, r, base_dir, check_files, types)
    for pname in spec.processors:
        check_processor(spec, pname, r, entities, types)
    _check_graph(spec, r)
    check_barriers(spec, r)  # run_retries / completion_timeout / barrier (docs/ledger.md)
    check_barrier_waits(spec, r)  # a barrier no timeout bounds (barrier_may_wait_forever)
    check_barrier_upstreams(spec, r)  # a barrier with nothing upstream (barrier_without_upstream)
    source_checks.check_sources(spec, r, entities)
    source_checks.check_field_columns(spec, r)
    _check_server(spec, r)
    if check_code:
        _check_lineage_code(spec, r, base_dir)
    for f in target_findings(spec, r.doc.data, env):  # ${ENV}, URLs, formats, mappings
        r.add(f.path, f.message, code=f.code, severity=f.severity)
    r.issues.sort(key=lambda i: (i.line or 0, i.column or 0))
    return r.issues


def _check_lineage_code(spec: RoutesSpec, r: Report, base_dir: Path) -> None:
    """A ``lineage.code`` glob matching no file (a typo, a moved file) leaves the processor's
    code unread: ``scoperouter lineage`` could prove nothing about it."""
    from scoperouter.lineage.globs import matches

    for pname, p in spec.processors.items():
        for i, glob in enumerate(p.lineage.code if p.lineage else ()):
            if not matches(glob, base_dir):
                r.add(
                    ("processors", pname, "lineage", "code", i),
                    f"lineage code glob {glob!r} matches no file under {str(base_dir)!r}: "
                    "scoperouter lineage cannot read this processor's code",
                    code="lineage_code_missing",
                    severity="warning",
                )


def _check_server(spec: RoutesSpec, r: Report) -> None:
    """Every ``server:`` value written passes the parser ``serve`` resolves it with (a date
    for ``as_of``, CPU ranges in order, a known log level...), so that ``validate`` rejects,
    at its line, what ``serve`` would refuse at start-up."""
    if spec.server is None:
        return
    from scoperouter.runtime.config import BY_NAME  # lazy: runtime imports the registry

    for key in sorted(spec.server.model_fields_set):
        setting = BY_NAME.get(key)
        value = getattr(spec.server, key)
        if setting is None or not setting.yaml or value is None:
            continue
        try:
            setting.parse(value)
        except ValueError as exc:
            r.add(("server", key), str(exc), code="bad_server_value")


def _check_plurals(spec: RoutesSpec, r: Report) -> None:
    """An event key must name one entity type: a plural may not equal another type's name
    or another type's plural."""
    owner: dict[str, str] = {et: et for et in spec.entities}
    for et, ent in spec.entities.items():
        key = ent.plural if ent.plural is not None else et + "s"
        other = owner.get(key)
        if other is not None and other != et:
            if ent.plural is None:
                if other in spec.entities and spec.entities[other].plural is None:
                    continue  # 'x' and 'xs' both declared: 'xs' names the type xs itself
                what = f"the default plural {key!r} of {et!r}"
            else:
                what = f"plural {key!r}"
            r.add(
                ("entities", et, "plural") if ent.plural is not None else ("entities", et),
                f"{what} is also the event key of entity type {other!r}; set a distinct 'plural'",
                code="plural_collision",
                key=ent.plural is None,
            )
            continue
        owner[key] = et


def _check_relations(spec: RoutesSpec, r: Report, entities: set[str]) -> dict[str, tuple[str, str]]:
    """Check relations; return the (from, to) types of every well-formed relation."""
    types: dict[str, tuple[str, str]] = {}
    for name, rel in spec.relations.items():
        if rel.inverse_of is not None:
            continue
        ok = True
        for attr, val in (("from", rel.from_), ("to", rel.to)):
            if val is not None and val not in entities:
                r.add(
                    ("relations", name, attr),
                    f"unknown entity type {val!r}{did_you_mean(val, entities)}",
                    code="unknown_entity",
                )
                ok = False
        if ok and rel.from_ is not None and rel.to is not None:
            types[name] = (rel.from_, rel.to)
    for name, rel in spec.relations.items():
        base = rel.inverse_of
        if base is None:
            continue
        target = spec.relations.get(base)
        if target is None:
            r.add(
                ("relations", name, "inverse_of"),
                f"inverse_of names unknown relation {base!r}"
                f"{did_you_mean(base, set(spec.relations) - {name})}",
                code="unknown_relation",
            )
        elif target.inverse_of is not None:
            r.add(
                ("relations", name, "inverse_of"),
                f"inverse_of must name a relation with from/to: {base!r} is itself the "
                f"inverse of {target.inverse_of!r}",
                code="inverse_of_inverse",
            )
        elif base in types:
            f, t = types[base]
            types[name] = (t, f)
    return types


def _check_relation_data(
    spec: RoutesSpec,
    r: Report,
    base_dir: Path,
    check_files: bool,
    types: Mapping[str, tuple[str, str]],
) -> None:
    bases = sorted(n for n, rel in spec.relations.items() if rel.inverse_of is None)
    if spec.relation_data is None:
        # SPEC: required when any relation is *used* (declared but unused ones need no rows)
        used = used_relations(spec, types)
        if used:
            r.add(
                ("relations",),
                f"relations are used ({', '.join(used)}) but 'relation_data' is missing "
                "(e.g. relation_data: {csv: {dir: data/relations}})",
                code="missing_relation_data",
                key=True,
            )
        return
    if not check_files:
        return
    dir_text = spec.relation_data.csv.dir
    d = Path(dir_text)
    if not d.is_absolute():
        d = base_dir / d
    where: YamlPath = ("relation_data", "csv", "dir")
    if bases and not d.is_dir():
        r.add(
            where,
            f"relation data directory {str(d)!r} does not exist (needed for {', '.join(bases)})",
            code="missing_relation_file",
        )
        return
    for name in bases:
        f = d / f"{name}.csv"
        if not f.is_file():
            r.add(
                where,
                f"missing relation data file {str(f)!r} for relation {name!r} "
                "(header date,from,to)",
                code="missing_relation_file",
            )


def _check_graph(spec: RoutesSpec, r: Report) -> None:
    publishers: dict[str, list[str]] = defaultdict(list)
    for pname, p in spec.processors.items():
        if p.publishes:
            publishers[p.publishes].append(pname)
    for src, names in publishers.items():
        for other in names[1:]:
            r.add(
                ("processors", other, "publishes"),
                f"{src!r} is also published by {names[0]!r}: their completion events cannot "
                "be told apart",
                code="duplicate_publishes",
                severity="warning",
            )
    source_checks.check_source_names(spec, r, set(publishers))
    edges: dict[str, set[str]] = {n: set() for n in spec.processors}
    for pname, p in spec.processors.items():
        for inp in p.inputs:
            for up in publishers.get(inp.source, ()):
                edges[up].add(pname)
                if spec.processors[up].phase > p.phase:
                    r.add(
                        ("processors", pname, "phase"),
                        f"phase {p.phase} reads {inp.source!r}, published by {up!r} in the "
                        f"later phase {spec.processors[up].phase}",
                        code="phase_order",
                        severity="warning",
                    )
    cycle = find_cycle(edges)
    if cycle:
        steps = " -> ".join(cycle)
        detail = "; ".join(
            f"{a} publishes {spec.processors[a].publishes!r}, read by {b}"
            for a, b in itertools.pairwise(cycle)
        )
        r.add(
            ("processors", cycle[0], "publishes"),
            f"cycle in the publishes graph: {steps} ({detail})",
            code="cycle",
        )
