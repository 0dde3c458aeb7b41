"""Diff a processor's derived reads against its inputs in the registry.

Invariant: the findings are exactly these, each with a code and a severity --
``missing_input`` (error): a table read that is not an input (its own output, its written
tables and ``lineage.ignore_tables`` excepted); ``field_not_listed`` (error): a column read
from an input that ``fields`` leaves out or ``ignore_fields`` names (identity columns --
the date field, the source's ``entity_key`` and ``keys`` -- excepted, since no change event
names them); ``unused_input`` (warning): an input none of the processor's code reads (not claimed
when nothing of its code could be resolved); ``unused_ignore`` (warning): a
``lineage.ignore_tables`` entry none of its code reads (a stale entry would hide a future
read of the table; claimed only on the SQL route, when every read of the code was resolved,
and not with ``lineage.partial_code``);
``unresolved`` (info): a read the tool could not resolve, listed and never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from scoperouter.field_names import field_key
from scoperouter.lineage.globs import ignored as covers
from scoperouter.lineage.reads import Origin, Reads, Unresolved
from scoperouter.processor_registry.compiled import CompiledRegistry

Severity = Literal["error", "warning", "info"]
CODES: dict[str, Severity] = {
    "missing_input": "error",
    "field_not_listed": "error",
    "unused_input": "warning",
    "unused_ignore": "warning",
    "unresolved": "info",
}


@dataclass(frozen=True)
class Finding:
    code: str
    processor: str
    source: str | None
    column: str | None
    message: str
    origin: Origin | None  # where the code reads it (None for unused_input)
    route: str  # sql | jobs | runtime

    @property
    def severity(self) -> Severity:
        return CODES[self.code]

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "processor": self.processor,
            "source": self.source,
            "column": self.column,
            "message": self.message,
            "file": self.origin.file if self.origin else None,
            "line": self.origin.line if self.origin else None,
            "route": self.route,
        }


def identity_columns(registry: CompiledRegistry, source: str) -> set[str]:
    """Columns no change event names: the date field, the entity key and declared keys."""
    spec = registry.spec.sources.get(source)
    out = {registry.spec.date_field}
    if spec is not None:
        out |= set(spec.keys)
        if spec.entity_key:
            out.add(spec.entity_key)
    return out


def _qualify(
    reads: Reads, known: set[str], registry: CompiledRegistry, ignored: frozenset[str] = frozenset()
) -> Reads:
    """``reads`` with each bare table name (a query run with a default dataset) replaced by
    the one ``dataset.table`` it stands for: the unique name of ``known`` (the processor's
    inputs, output and ignored tables) with that table part, else the registry's unique
    source with it. A bare name its own code writes (a temp table) stays as it is. A bare
    name taken for one of ``ignored`` while a source of the registry has that table part too
    is listed unresolved (the ignored table would hide a read of the source)."""

    unresolved = list(reads.unresolved)

    def full(table: str) -> str:
        if "." in table or table in reads.writes:
            return table
        cands = sorted(k for k in known if k.rsplit(".", 1)[-1] == table)
        if len(cands) == 1:
            others = sorted(set(registry.by_table.get(table, ())) - {cands[0]})
            if cands[0] in ignored and others:  # an ignored table must not hide a source
                unresolved.append(
                    Unresolved(
                        reads.table_origin[table],
                        f"bare table name {table!r} is ambiguous: read as {cands[0]} "
                        f"(lineage.ignore_tables), but {', '.join(others)} "
                        f"{'is a source' if len(others) == 1 else 'are sources'} too",
                    )
                )
            return cands[0]
        try:
            return registry.resolve_source(table) or table
        except ValueError:  # ambiguous bare name: keep it (reported as read)
            return table

    if all("." in t for t in reads.tables):
        return reads
    out = Reads(columns_known=reads.columns_known, parsed=reads.parsed)
    out.unresolved = unresolved
    for t, cols in reads.tables.items():
        q = full(t)
        out.add_table(q, reads.table_origin[t])
        for c in cols:
            out.add_column(q, c, reads.column_origin.get((t, c), reads.table_origin[t]))
    out.writes = set(reads.writes)
    return out


def diff_processor(
    registry: CompiledRegistry, name: str, reads: Reads, route: str = "sql"
) -> list[Finding]:
    """The findings of one processor whose reads are known."""
    proc = registry.processors[name]
    lineage = proc.spec.lineage
    ignored = set(lineage.ignore_tables) if lineage else set()
    own = {proc.publishes} if proc.publishes else set()
    reads = _qualify(reads, set(proc.inputs) | own | ignored, registry, frozenset(ignored))
    out: list[Finding] = []
    for table in sorted(reads.tables):
        ci = proc.inputs.get(table)  # an input is checked even if ignored (validate rejects it)
        if ci is None and (table in own or covers(table, ignored) or table in reads.writes):
            continue
        where = reads.table_origin.get(table)
        if ci is None:
            out.append(
                Finding(
                    "missing_input",
                    name,
                    table,
                    None,
                    f"{name} reads {table}, which is not one of its inputs",
                    where,
                    route,
                )
            )
            continue
        # compared as the router does (field_names: stripped, ignoring case -- BigQuery
        # column names are case-insensitive), each column once whatever its cases
        skip = {field_key(c) for c in identity_columns(registry, table)}
        fields = ci.fields  # compiled folded (processor_registry.compiled)
        ignore = ci.ignore_fields or frozenset()
        seen: set[str] = set()
        for col in sorted(reads.tables[table]):
            key = field_key(col)
            if key in skip or key in seen:
                continue
            seen.add(key)
            left_out = fields is not None and key not in fields
            ignored_f = key in ignore
            if not (left_out or ignored_f):
                continue
            at = reads.column_origin.get((table, col), where)
            why = "fields leaves it out" if left_out else "ignore_fields names it"
            out.append(
                Finding(
                    "field_not_listed",
                    name,
                    table,
                    col,
                    f"{name} reads {table}.{col}, but the input's {why}: a change to "
                    f"{col} alone would be skipped",
                    at,
                    route,
                )
            )
    # a string naming a source the code reads no SQL of (client.list_rows("ds.t")): unknown
    unresolved = list(reads.unresolved)
    for table, at in sorted(reads.mentions.items()):
        if table in registry.sources and table not in reads.tables and table not in own:
            unresolved.append(
                Unresolved(
                    at,
                    f"string {table!r} names a source no SQL of this code reads: an API call "
                    "may read it (list_rows, read_gbq...); its columns are unknown",
                )
            )
    # nothing resolved at all (no file matched, nothing parsed): "unused" would be a guess
    blind = not reads.tables and bool(reads.unresolved)
    read = set(reads.tables) | set(reads.mentions)  # (a mentioned input: unresolved above)
    for source in sorted(set(proc.inputs) - read if not blind else ()):
        out.append(
            Finding(
                "unused_input",
                name,
                source,
                None,
                f"{name} lists {source} as an input, but none of its "
                + {"jobs": "jobs references it", "runtime": "runs reported reading it"}.get(
                    route, "code reads it"
                ),
                None,
                route,
            )
        )
    resolved = not unresolved and route == "sql"
    partial = bool(lineage and lineage.partial_code)
    unused = [e for e in ignored if not any(covers(t, (e,)) for t in reads.tables)]
    for table in sorted(unused if resolved and not partial else ()):
        out.append(
            Finding(
                "unused_ignore",
                name,
                table,
                None,
                f"{name} ignores {table} (lineage.ignore_tables), but none of its code reads "
                "it: remove the stale entry (it would hide a later read of the table), or set "
                "lineage.partial_code when code outside the globs reads it",
                None,
                route,
            )
        )
    for u in dict.fromkeys(unresolved):  # once per place and reason
        out.append(Finding("unresolved", name, None, None, u.what, u.origin, route))
    return out


def diff_all(
    registry: CompiledRegistry, reads_by_processor: Mapping[str, Reads], route: str = "sql"
) -> list[Finding]:
    out: list[Finding] = []
    for name in sorted(reads_by_processor):
        if name in registry.processors:
            out.extend(diff_processor(registry, name, reads_by_processor[name], route))
    return out
