"""Gather each processor's reads from its code: SQL files and SQL literals in Python files.

Invariant: a processor's code is the files its globs match (``lineage: {code: [...]}`` in
routes.yaml, or the command line), resolved against one root directory; a glob that matches
nothing and a file that cannot be read or parsed are unresolved entries, never skipped
silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from scoperouter.lineage.globs import expand
from scoperouter.lineage.pynames import table_mentions
from scoperouter.lineage.pysrc import Literal, sql_literals
from scoperouter.lineage.reads import Origin, Reads, Unresolved
from scoperouter.lineage.sql import PLACEHOLDER, Schema, sql_reads


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)


def file_reads(path: Path, root: Path, schema: Schema | None = None) -> Reads:
    """The reads of one file: a .py file's SQL literals, else the whole file as SQL."""
    shown = _display(path, root)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is no content
    except (OSError, UnicodeDecodeError) as exc:
        reads = Reads()
        reads.unresolved.append(Unresolved(Origin(shown), f"cannot read: {exc}"))
        return reads
    if path.suffix != ".py":
        return sql_reads(text, Origin(shown, 1), schema)
    reads = Reads()
    try:
        literals = sql_literals(text)
    except SyntaxError as exc:
        reads.unresolved.append(Unresolved(Origin(shown, exc.lineno or 0), "not Python"))
        return reads
    mentions, built = table_mentions(text)
    for line, table in mentions:
        reads.mentions.setdefault(table, Origin(shown, line))
    for line, name in built:
        reads.unresolved.append(
            Unresolved(Origin(shown, line), f"table name built at run time: {name}")
        )
    ctes = tuple(sorted({n for lit in literals for n in _cte_names(lit)}))
    columns: dict[str, frozenset[str] | None] = {}
    for lit in literals if ctes else ():
        for name, cols in _cte_columns(lit).items():
            known = columns.get(name, frozenset())
            # a name two fragments define: the union of what they project, unknown if either is
            columns[name] = None if cols is None or known is None else known | cols
    for lit in literals:
        where = Origin(shown, lit.line)
        got = _literal_reads(lit, where, schema, ctes)
        if not got.parsed and lit.alone is not None:
            got = _literal_reads(lit.alone, where, schema, ctes)
            lines = ", ".join(map(str, lit.appended))
            got.unresolved.append(
                Unresolved(
                    where,
                    f"SQL appended with += (line {lines}) does not parse with the query: "
                    "read without it",
                )
            )
        if _appendable(lit):
            got = _without_fragment_ctes(got, ctes, columns)
        reads.merge(got)
    return reads


# a helper's CTE fragment: ``[WITH] name AS (SELECT ...)[, other AS (...)][,]`` (no query)
_CTE_FRAGMENT = re.compile(r"^\s*(WITH\s+)?([A-Za-z_]\w*)\s+AS\s*\(", re.I)
_CTE_NAME = re.compile(r"(?:^\s*(?:WITH\s+)?|\)\s*,\s*)([A-Za-z_]\w*)\s+AS\s*\(", re.I)


def _fragment_text(lit: Literal) -> str:
    return lit.clause_text or lit.text


def _whole(text: str) -> bool:
    """Whether ``text`` parses as one statement (``WITH c AS (...) SELECT ...``: a query of
    its own, no fragment)."""
    try:
        return len(sqlglot.parse(text, read="bigquery")) == 1
    except SqlglotError:
        return False


def _cte_names(lit: Literal) -> list[str]:
    """The CTE names a CTE fragment defines (none for other literals, nor for a whole query
    with a WITH of its own: its CTEs are its own)."""
    text = _fragment_text(lit)
    if lit.fragment or not _CTE_FRAGMENT.match(text) or _whole(text):
        return []
    return [m.group(1) for m in _CTE_NAME.finditer(text)]


def _cte_columns(lit: Literal) -> dict[str, frozenset[str] | None]:
    """Per CTE a fragment defines: the names it projects (None when unknown: a ``*``, a
    fragment that does not parse as a WITH)."""
    own = _cte_names(lit)
    body = _CTE_FRAGMENT.sub(lambda m: m.group(0)[len(m.group(1) or "") :], _fragment_text(lit))
    try:
        tree = sqlglot.parse_one(f"WITH {body.rstrip().rstrip(',')} SELECT 1", read="bigquery")
    except SqlglotError:
        return dict.fromkeys(own)
    out: dict[str, frozenset[str] | None] = dict.fromkeys(own)
    for cte in tree.find_all(exp.CTE) if isinstance(tree, exp.Expression) else ():
        q = cte.this
        if cte.alias in out and isinstance(q, exp.Query):
            names = [sel.alias_or_name for sel in q.selects]
            star = any(isinstance(sel, exp.Star) or sel.is_star for sel in q.selects)
            out[cte.alias] = None if star else frozenset(n.lower() for n in names)
    return out


# a query that can follow the WITH the fragments assemble: a bare SELECT (holes before it
# left out), not a MERGE / INSERT / UPDATE / DELETE nor a query with a WITH of its own
_APPENDABLE = re.compile(rf"^\s*(?:(?:--[^\n]*|#[^\n]*|{PLACEHOLDER}\w*)\s*)*\(*\s*SELECT\b", re.I)


def _appendable(lit: Literal) -> bool:
    """Whether ``lit`` is a whole query that may be the final SELECT appended to the WITH
    the file's fragments assemble (a fragment is not: a name in its CTE body is no CTE of
    its own, BigQuery's non-recursive CTEs not referencing themselves)."""
    return not _cte_names(lit) and any(
        _APPENDABLE.match(t) for t in (lit.text, lit.clause_text) if t
    )


def _without_fragment_ctes(
    got: Reads, ctes: tuple[str, ...], columns: dict[str, frozenset[str] | None]
) -> Reads:
    """``got`` less its bare tables named as a CTE by the file's fragments: a whole query
    appended to the WITH those fragments assemble (a loader's final SELECT) reads the CTEs,
    whose own reads are the fragments'. A name the query reads a column of that the CTE
    does not project is no such CTE: a table (a query run alone, with a default dataset)."""
    by_lower = {n.lower(): n for n in ctes}  # BigQuery matches CTE names ignoring case
    for name in [t for t in got.tables if t.lower() in by_lower]:
        projected = columns.get(by_lower[name.lower()])
        if projected is not None and not {c.lower() for c in got.tables[name]} <= projected:
            continue
        del got.tables[name]
        del got.table_origin[name]
        for key in [k for k in got.column_origin if k[0] == name]:
            del got.column_origin[key]
    return got


def _cte_fragment_reads(
    lit: Literal, where: Origin, schema: Schema | None, ctes: tuple[str, ...]
) -> Reads | None:
    """The reads of a CTE fragment, parsed as the WITH of a query taking its CTEs whole;
    the CTEs of the file's other fragments are declared before it (they are CTEs of the
    assembled query, not tables)."""
    own = _cte_names(lit)
    if not own:
        return None
    body = _CTE_FRAGMENT.sub(lambda m: m.group(0)[len(m.group(1) or "") :], _fragment_text(lit))
    body = body.rstrip().rstrip(",")
    mine = {n.lower() for n in own}
    others = "".join(f"{n} AS (SELECT * FROM UNNEST([1])), " for n in ctes if n.lower() not in mine)
    got = sql_reads(f"WITH {others}{body} SELECT * FROM {', '.join(own)}", where, schema)
    return got if got.parsed else None


def _literal_reads(
    lit: Literal, where: Origin, schema: Schema | None, ctes: tuple[str, ...] = ()
) -> Reads:
    """The reads of one SQL literal (its clause holes left empty when it does not parse
    otherwise; a helper's CTE fragment as a CTE), or of a fragment (unresolved)."""
    reads = Reads()
    if lit.fragment:
        shown_text = " ".join(lit.text.split())[:50]
        reads.unresolved.append(
            Unresolved(
                where,
                f"SQL fragment ({shown_text}...) assembled at run time: the tables and "
                "columns it reads are unknown",
            )
        )
        reads.parsed = False
        return reads
    got = sql_reads(lit.text, where, schema)
    if not got.parsed and lit.clause_text and lit.clause_text != lit.text:
        retry = sql_reads(lit.clause_text, where, schema)
        if retry.parsed:
            dropped = ", ".join(
                "{" + (h if len(h) <= 40 else h[:37] + "...") + "}" for h in lit.holes
            )
            retry.unresolved.append(
                Unresolved(where, f"dynamic SQL: read with the clause holes left empty ({dropped})")
            )
            got = retry
    if not got.parsed and (cte := _cte_fragment_reads(lit, where, schema, ctes)) is not None:
        got = cte
    return got


def code_reads(
    globs_by_processor: Mapping[str, tuple[str, ...]], root: Path, schema: Schema | None = None
) -> dict[str, Reads]:
    """Per processor with code globs: the union of its files' reads."""
    cache: dict[Path, Reads] = {}
    out: dict[str, Reads] = {}
    for proc, globs in globs_by_processor.items():
        files, empty = expand(globs, root)
        reads = Reads()
        for g in empty:
            under = "" if Path(g).is_absolute() else f" under {_display(root, root) or '.'}"
            reads.unresolved.append(Unresolved(Origin(g), f"glob matches no file{under}"))
        for f in files:
            if f not in cache:
                cache[f] = file_reads(f, root, schema)
            reads.merge(cache[f])
        out[proc] = reads
    return out
