"""Reads of SQL text, parsed with sqlglot's BigQuery dialect (never regular expressions).

Invariant: every table a statement reads and every column it uses from each are derived
from the parse tree's scopes (CTEs and subqueries resolved to the tables under them);
written tables (INSERT/MERGE/CREATE/DELETE/UPDATE targets) are not reads; a name built at
run time (a template placeholder), an ambiguous column or a ``SELECT *`` on a table is an
:class:`~scoperouter.lineage.reads.Unresolved` entry, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

from scoperouter.lineage.reads import Origin, Reads, Unresolved

PLACEHOLDER = "__scoperouter_dyn"  # template holes become identifiers with this prefix
Schema = Mapping[str, frozenset[str] | set[str]]


def is_placeholder(name: str) -> bool:
    return PLACEHOLDER in name


def table_name(t: exp.Table) -> str:
    """``dataset.table`` (the project is dropped: sources name dataset.table). A user
    table-valued function (``ds.fn(...)``) is named ``ds.fn``; a built-in one
    (``ML.PREDICT``, ``GAP_FILL``...) has no name (``""``): its table arguments are read."""
    if isinstance(t.this, exp.Anonymous):
        name = t.this.name
    elif isinstance(t.this, exp.Func):
        return ""
    else:
        name = t.name
    return f"{t.db}.{name}" if t.db else name


def _line(node: exp.Expression, base: Origin) -> Origin:
    meta = getattr(node.this, "meta", None) if isinstance(node.this, exp.Expression) else None
    line = (meta or {}).get("line") or node.meta.get("line")
    return Origin(base.file, base.line + int(line) - 1) if line else base


class _Resolver:
    def __init__(self, reads: Reads, schema: Schema, base: Origin) -> None:
        self.reads = reads
        self.schema = schema
        self.base = base

    def table(self, t: exp.Table) -> str | None:
        name = table_name(t)
        if is_placeholder(t.name) or is_placeholder(t.db):
            self.reads.unresolved.append(
                Unresolved(_line(t, self.base), "table name built at run time")
            )
            return None
        if not name:
            return None  # a built-in table-valued function: its arguments are the reads
        self.reads.add_table(name, _line(t, self.base))
        if isinstance(t.this, exp.Anonymous):
            self.reads.unresolved.append(
                Unresolved(
                    _line(t, self.base),
                    f"table-valued function {name}: the tables it reads are unknown",
                )
            )
        return name

    def column(self, source: object, name: str, node: exp.Expression, depth: int = 0) -> None:
        where = _line(node, self.base)
        if isinstance(source, exp.Table):
            tname = self.table(source)
            if tname is not None:
                self.reads.add_column(tname, name, where)
            return
        if not isinstance(source, Scope) or depth > 20:
            return
        if isinstance(source.expression, exp.Unnest | exp.Values):
            return
        child = source.expression
        selects = child.selects if isinstance(child, exp.Query) else []
        if any(s.alias_or_name == name and not isinstance(s, exp.Star) for s in selects):
            return  # a projection of the child: the child's own scope records its reads
        for s in selects:
            star = s if isinstance(s, exp.Star) else s.this if isinstance(s, exp.Column) else None
            if not isinstance(star, exp.Star):
                continue
            qual = s.table if isinstance(s, exp.Column) else ""
            if qual and qual in source.selected_sources:
                self.column(source.selected_sources[qual][1], name, node, depth + 1)
            elif not qual:
                self.unqualified(source, name, node, depth + 1)
            return

    def unqualified(self, scope: Scope, name: str, node: exp.Expression, depth: int = 0) -> None:
        sel = scope.selected_sources
        if name in sel and isinstance(sel[name][1], Scope | exp.Unnest):
            return  # the value of an UNNEST alias
        candidates: list[exp.Table | Scope] = []
        for _alias, (_node, src) in sel.items():
            if isinstance(src, exp.Table):
                known = self.schema.get(table_name(src))
                if known is None or name in known:
                    candidates.append(src)
            elif isinstance(src, Scope) and isinstance(src.expression, exp.Query):
                projects = {s.alias_or_name for s in src.expression.selects}
                if name in projects or "*" in projects:
                    candidates.append(src)
        if len(candidates) == 1:
            self.column(candidates[0], name, node, depth)
            return
        where = _line(node, self.base)
        names = sorted(
            table_name(c) if isinstance(c, exp.Table) else "(subquery)" for c in candidates
        )
        what = (
            f"column {name!r} is ambiguous ({', '.join(names)})"
            if candidates
            else f"column {name!r} matches no source of its query"
        )
        self.reads.unresolved.append(Unresolved(where, what))


def _outer_source(scope: Scope, alias: str) -> object | None:
    """The source an enclosing scope names ``alias`` (correlated subqueries)."""
    parent = scope.parent
    while parent is not None:
        if alias in parent.selected_sources:
            return parent.selected_sources[alias][1]
        parent = parent.parent
    return None


def _scope_reads(scope: Scope, r: _Resolver) -> None:
    sel = scope.selected_sources
    for _alias, (_node, src) in sel.items():
        if isinstance(src, exp.Table):
            r.table(src)
    aliases = {
        s.alias for s in getattr(scope.expression, "selects", []) if isinstance(s, exp.Alias)
    }
    for col in scope.columns:
        name = col.name
        if is_placeholder(name) or not name:
            continue
        qual = col.table
        if qual and qual in sel:
            r.column(sel[qual][1], name, col)
        elif qual:
            head = col.parts[0].name if col.parts else qual
            outer = _outer_source(scope, qual)
            if head in sel and len(col.parts) > 1:  # alias.struct.field
                r.column(sel[head][1], col.parts[1].name, col)
            elif outer is not None:  # a correlated subquery naming an outer alias
                r.column(outer, name, col)
            else:  # struct.field of an unqualified column
                r.unqualified(scope, head, col)
        elif name in aliases:
            continue  # a projection alias (QUALIFY rn = 1, ORDER BY total)
        else:
            r.unqualified(scope, name, col)
    if scope.is_root:
        for s in getattr(scope.expression, "selects", []):
            star = s if isinstance(s, exp.Star) else s.this if isinstance(s, exp.Column) else None
            if isinstance(star, exp.Star):
                tables = [
                    n
                    for _a, (_n, t) in sel.items()
                    if isinstance(t, exp.Table) and (n := table_name(t))
                ]
                if tables:
                    r.reads.unresolved.append(
                        Unresolved(
                            _line(s, r.base),
                            f"SELECT * from {', '.join(sorted(tables))}: columns unknown",
                        )
                    )


_WRITES = (exp.Insert, exp.Merge, exp.Create, exp.Delete, exp.Update)


def _merge_reads(stmt: exp.Merge, r: _Resolver) -> None:
    """MERGE is no query scope: the USING table's columns named in ON / WHEN clauses."""
    using = stmt.args.get("using")
    if not isinstance(using, exp.Table):
        return  # a subquery: its own scope recorded its reads
    alias = using.alias_or_name
    for col in stmt.find_all(exp.Column):
        if col.find_ancestor(exp.Select) is None and col.table == alias:
            r.column(using, col.name, col)


def _statement_reads(stmt: exp.Expression, r: _Resolver) -> None:
    targets: set[int] = set()
    for w in stmt.find_all(*_WRITES):
        target = w.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.UserDefinedFunction):
            # CREATE FUNCTION / TABLE FUNCTION / PROCEDURE: a routine's name, not a table
            if isinstance(target.this, exp.Table):
                targets.add(id(target.this))
            continue
        if isinstance(target, exp.Table):
            targets.add(id(target))
            r.reads.writes.add(table_name(target))
    # DDL that changes a table without reading it: DROP, TRUNCATE, ALTER targets are writes
    # (a dropped function, procedure or schema is no table at all)
    for ddl in stmt.find_all(exp.Drop, exp.TruncateTable, exp.Alter):
        if isinstance(ddl, exp.Drop):
            objs = ddl.args.get("tables") or [ddl.this]
            kind = str(ddl.args.get("kind") or "TABLE").upper()
            is_table = kind in ("TABLE", "VIEW", "MATERIALIZED VIEW", "EXTERNAL TABLE")
        else:
            objs = [ddl.this] if isinstance(ddl, exp.Alter) else ddl.expressions
            is_table = True
        for t in objs:
            if isinstance(t, exp.Table):
                targets.add(id(t))
                if is_table:
                    r.reads.writes.add(table_name(t))
    ctes = {c.alias for c in stmt.find_all(exp.CTE)}
    for scope in traverse_scope(stmt):
        _scope_reads(scope, r)
    if isinstance(stmt, exp.Merge):
        _merge_reads(stmt, r)
    for t in stmt.find_all(exp.Table):  # e.g. MERGE ... USING table
        if id(t) not in targets and not (not t.db and t.name in ctes):
            r.table(t)


# BigQuery scripting that sqlglot keeps as an opaque ``Command`` (its text unparsed).
# A block opener's body is plain SQL: it is parsed again (by sqlglot) from its first
# statement keyword; the regular expression only finds where that statement starts.
_BLOCK_OPENERS = frozenset({"BEGIN", "LOOP", "REPEAT"})
_BODY_START = re.compile(r"\b(SELECT|WITH|INSERT|MERGE|CREATE|DELETE|UPDATE|TRUNCATE|DROP)\b", re.I)


def _command_reads(
    cmd: exp.Command, reads: Reads, origin: Origin, schema: Schema, depth: int
) -> None:
    """The reads of a statement sqlglot could only keep as text: a BEGIN/LOOP block's body
    is parsed again; anything else (WHILE, EXECUTE IMMEDIATE, CALL...) is unresolved."""
    keyword = str(cmd.this or "").strip().upper()
    arg = cmd.args.get("expression")
    rest = arg.name if isinstance(arg, exp.Expression) else str(arg or "")
    if keyword == "END":
        return  # END / END LOOP / END WHILE / END IF close a block
    if keyword in _BLOCK_OPENERS and depth < 10:
        m = _BODY_START.search(rest)
        if m is not None and not rest[: m.start()].strip():
            inner = _sql_reads(rest[m.start() :], origin, schema, depth + 1)
            if inner.parsed:
                reads.merge(inner)
                return
    shown = f"{keyword} {rest}".strip().splitlines()[0][:60]
    reads.unresolved.append(
        Unresolved(origin, f"SQL not analysable ({shown}...): the tables it reads are unknown")
    )


def sql_reads(text: str, origin: Origin, schema: Schema | None = None) -> Reads:
    """The reads of ``text`` (one or more statements). A text sqlglot cannot parse is one
    unresolved entry."""
    return _sql_reads(text, origin, schema or {}, 0)


def _sql_reads(text: str, origin: Origin, schema: Schema, depth: int) -> Reads:
    reads = Reads()
    r = _Resolver(reads, schema, origin)
    try:
        statements = sqlglot.parse(text, read="bigquery")
    except SqlglotError as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        reads.unresolved.append(Unresolved(origin, f"SQL that does not parse: {first}"))
        reads.parsed = False
        return reads
    for stmt in statements:
        if not isinstance(stmt, exp.Expression):
            continue
        for cmd in stmt.find_all(exp.Command):
            _command_reads(cmd, reads, origin, schema, depth)
        try:
            _statement_reads(stmt, r)
        except SqlglotError as exc:
            reads.unresolved.append(Unresolved(origin, f"SQL not analysable: {exc}"))
    reads.unresolved = list(dict.fromkeys(reads.unresolved))  # once per place and reason
    return reads
