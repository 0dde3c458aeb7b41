"""Checks of source names: the ``sources:`` declarations, and near misses.

* ``sources:`` -- a declared entity exists and agrees with the granularity of every
  processor publishing the source; a declared ``entity_key`` is one of its ``columns``.
* ``unknown_column`` (error) -- a ``fields`` / ``ignore_fields`` name that is not a column of
  the input's declared source, ignoring case as the router does (with a did-you-mean, or
  the other input of the processor that has the column: fields sitting on the wrong input).
* ``field_case`` (warning) -- two names of one input's ``fields`` (or ``ignore_fields``) that
  differ only by case (``[points, Points]``): changed fields are matched ignoring case
  (:mod:`scoperouter.field_names`), so they name one field twice. Capitals alone are
  harmless and not reported.
* ``near_miss_source`` (error) -- an input source one edit (Damerau-Levenshtein) away from
  another source the registry names, unless it is declared (:func:`declared_sources`): a
  typo in a raw source name would otherwise route nothing, silently. Likewise a
  ``publishes`` no input reads, one edit away from a source inputs read (declared or not)
  that no processor publishes, unless the published name is itself declared under
  ``sources:``: a typo there cuts the DAG.
* ``similar_source`` (warning) -- further off, but close to a published name in a dataset
  processors publish to.
"""

from __future__ import annotations

import difflib
from collections import defaultdict

from scoperouter.field_names import field_key
from scoperouter.processor_registry.compiled import DATE_GRANULARITY
from scoperouter.processor_registry.findings import Report, did_you_mean
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.yaml_positions import YamlPath


def check_sources(spec: RoutesSpec, r: Report, entities: set[str]) -> None:
    """``sources:`` declarations: a declared entity exists and agrees with the granularity
    of every processor publishing the source; a declared entity key is one of its columns."""
    publishers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pname, p in spec.processors.items():
        if p.publishes:
            publishers[p.publishes].append((pname, p.granularity))
    for sname, sspec in spec.sources.items():
        base: YamlPath = ("sources", sname)
        if sspec.entity is not None:
            if sspec.entity not in entities:
                r.add(
                    (*base, "entity"),
                    f"unknown entity type {sspec.entity!r}{did_you_mean(sspec.entity, entities)}",
                    code="unknown_entity",
                )
            else:  # every publisher (several only with a duplicate_publishes warning)
                bad = [
                    (pname, gran)
                    for pname, gran in publishers.get(sname, ())
                    if gran != DATE_GRANULARITY and gran != sspec.entity
                ]
                if bad:
                    pname, gran = bad[0]
                    r.add(
                        (*base, "entity"),
                        f"entity {sspec.entity!r} disagrees with the granularity {gran!r} of "
                        f"processor {pname!r}, which publishes this source",
                        code="source_entity_conflict",
                    )
        if (
            sspec.entity_key is not None
            and sspec.columns is not None
            and sspec.entity_key not in sspec.columns
        ):
            r.add(
                (*base, "entity_key"),
                f"entity_key {sspec.entity_key!r} is not one of the declared columns"
                f"{did_you_mean(sspec.entity_key, sspec.columns)}",
                code="unknown_column",
            )


def check_field_columns(spec: RoutesSpec, r: Report) -> None:
    """Every ``fields`` / ``ignore_fields`` name of an input whose source declares its
    ``columns`` is one of them, compared ignoring case (column names are case-insensitive,
    and so is the router's matching: :mod:`scoperouter.field_names`). A name that is a
    column of another input of the same processor says which: the fields sit on the wrong
    input. On every input, two names differing only by case are a ``field_case`` warning."""
    columns = {
        name: {field_key(c) for c in s.columns}
        for name, s in spec.sources.items()
        if s.columns is not None
    }
    for pname, p in spec.processors.items():
        for i, inp in enumerate(p.inputs):
            _check_field_case(pname, i, inp.fields, inp.ignore_fields, r)
            known = columns.get(inp.source)
            if known is None:
                continue
            declared = spec.sources[inp.source].columns or ()
            for key in ("fields", "ignore_fields"):
                names = getattr(inp, key) or ()
                for j, name in enumerate(names):
                    if field_key(name) in known:
                        continue
                    elsewhere = sorted(
                        o.source
                        for o in p.inputs
                        if o.source != inp.source and field_key(name) in columns.get(o.source, ())
                    )
                    hint = (
                        f"; it is a column of {elsewhere[0]!r}, another input of {pname!r}: "
                        f"the {key} sit on the wrong input?"
                        if elsewhere
                        else did_you_mean(name, declared)
                    )
                    r.add(
                        ("processors", pname, "inputs", i, key, j),
                        f"{key} name {name!r} is not a column of {inp.source!r}{hint}",
                        code="unknown_column",
                    )


def _check_field_case(
    pname: str,
    i: int,
    fields: tuple[str, ...] | None,
    ignore_fields: tuple[str, ...] | None,
    r: Report,
) -> None:
    """``field_case`` warnings: a name of one list spelled like an earlier one but for case
    (``[points, Points]``). Changed fields are matched ignoring case, so the two name one
    field: the later one is redundant, or the author meant another column."""
    for key, names in (("fields", fields), ("ignore_fields", ignore_fields)):
        first: dict[str, tuple[int, str]] = {}
        for j, name in enumerate(names or ()):
            seen = first.setdefault(field_key(name), (j, name))
            if seen[1] == name:
                continue  # the first spelling (an exact repeat is not a case matter)
            r.add(
                ("processors", pname, "inputs", i, key, j),
                f"{key} name {name!r} differs from {seen[1]!r} (item {seen[0]}) only by case: "
                "changed fields are matched ignoring case, so both name one field; "
                "remove one",
                code="field_case",
                severity="warning",
            )


def declared_sources(spec: RoutesSpec) -> set[str]:
    """Source names the registry vouches for: every ``publishes`` and every name under
    ``sources:``. The near-miss check never flags these."""
    return {p.publishes for p in spec.processors.values() if p.publishes} | set(spec.sources)


def one_edit_apart(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by exactly one insertion, deletion, substitution or
    swap of two adjacent characters (Damerau-Levenshtein distance 1) -- except a digit
    substituted for a digit or two adjacent digits swapped, which name a version, a year or
    a number (``t00300``, ``t03000``) rather than a typo."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        if a[i + 1 :] == b[i + 1 :]:
            # one substitution; a digit for a digit is a version (sales_v1, sales_v2), not a typo
            return not (a[i].isdigit() and b[i].isdigit())
        swapped = a[i + 2 :] == b[i + 2 :] and a[i] == b[i + 1] and a[i + 1] == b[i]
        # two digits swapped renumber (t00300, t03000), like a digit for a digit
        return swapped and not (a[i].isdigit() and a[i + 1].isdigit())
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1 :] == shorter[i:]


def check_source_names(spec: RoutesSpec, r: Report, published: set[str]) -> None:
    """A source named by an input that is one edit away from another source the registry
    names is an error unless declared (:func:`declared_sources`): a typo in a raw source
    name would otherwise route nothing, silently. Further off but close to a published
    name, in a dataset processors publish to: a warning (``similar_source``)."""
    declared = declared_sources(spec)
    named: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for pname, p in spec.processors.items():
        for i, inp in enumerate(p.inputs):
            named[inp.source].append((pname, i))
    known = sorted(set(named) | declared)
    by_len: dict[int, list[str]] = defaultdict(list)
    for name in known:
        by_len[len(name)].append(name)
    datasets = {src.rsplit(".", 1)[0] for src in published if "." in src}
    reported: set[frozenset[str]] = set()  # pairs a near_miss_source already names
    for src, places in named.items():
        if src in declared:
            continue
        near = [
            other
            for n in (len(src) - 1, len(src), len(src) + 1)
            for other in by_len.get(n, ())
            if one_edit_apart(src, other)
        ]
        for pname, i in places:
            where: YamlPath = ("processors", pname, "inputs", i, "source")
            if near:
                other = sorted(near, key=lambda o: (o not in declared, o))[0]
                if other in published:
                    whose = "published by a processor"
                elif other in named:
                    whose = f"read by {', '.join(sorted({q for q, _ in named[other]}))}"
                else:
                    whose = "declared under sources"
                r.add(
                    where,
                    f"source {src!r} is one edit away from {other!r} ({whose}): a typo would "
                    "never be triggered; fix it, or declare it under 'sources:' if it is real",
                    code="near_miss_source",
                )
                reported.update(frozenset((src, o)) for o in near)
                continue
            if src in published or "." not in src or src.rsplit(".", 1)[0] not in datasets:
                continue
            close = difflib.get_close_matches(src, sorted(published), n=1, cutoff=0.85)
            if close:
                r.add(
                    where,
                    f"no processor publishes {src!r} (did you mean {close[0]!r}?); as a raw "
                    "source it is only triggered by events naming it",
                    code="similar_source",
                    severity="warning",
                )
    _check_published_names(spec, r, named, published, reported)


def _check_published_names(
    spec: RoutesSpec,
    r: Report,
    named: dict[str, list[tuple[str, int]]],
    published: set[str],
    reported: set[frozenset[str]],
) -> None:
    """A ``publishes`` no input reads, one edit away from a source inputs read (declared or
    not) that no processor publishes, is a ``near_miss_source`` error at the ``publishes``:
    the typo cuts the DAG (the readers never run after it, a barrier never waits for it),
    and declaring the read source exempts it from the input-side check. Not when declared
    under ``sources:`` itself, nor for a pair the input-side check already reported; a read
    source another processor publishes already has its edge (meaning it would make two
    publishers of one source)."""
    by_len: dict[int, list[str]] = defaultdict(list)
    for name in named:
        if name not in published:
            by_len[len(name)].append(name)
    for pname, p in spec.processors.items():
        pub = p.publishes
        if pub is None or pub in named or pub in spec.sources:
            continue
        near = sorted(
            other
            for n in (len(pub) - 1, len(pub), len(pub) + 1)
            for other in by_len.get(n, ())
            if one_edit_apart(pub, other) and frozenset((pub, other)) not in reported
        )
        if not near:
            continue
        other = near[0]
        readers = ", ".join(sorted({q for q, _ in named[other]}))
        r.add(
            ("processors", pname, "publishes"),
            f"publishes {pub!r}, which no input reads, is one edit away from {other!r} (read "
            f"by {readers}): a typo cuts the DAG (completions of {pname!r} never trigger "
            f"{readers}, no barrier waits for it); fix it, or declare it under 'sources:' if "
            "it is real",
            code="near_miss_source",
        )
