"""Reads of one sqlglot scope: its tables, and each column resolved through aliases, CTEs
and subqueries to the table it comes from.

Invariant: a column is attributed to a table only when the SQL names it (a qualified
column, the only source of its scope that can have it, the only declared source having
it); a name in SELECT / WHERE / ON is a column even when a projection has its name, and a
projection alias only in GROUP BY / HAVING / QUALIFY / ORDER BY; a column of a UNION is
the first branch's column of its name and each other branch's at the same place (unresolved
where that place is unknown); an unqualified column of a subquery is the innermost scope's
that can have it (correlated only when no source of the subquery can: an UNNEST's struct
fields, unknown, do not hide a column of the enclosing query's tables); a ``SELECT *`` whose
columns reach the statement's result whole leaves its table's columns unknown
(:class:`~scoperouter.lineage.reads.Unresolved`), never "none". BigQuery's pseudo-columns
(:data:`PSEUDO_COLUMNS`: ``_TABLE_SUFFIX`` of a wildcard table, ``_PARTITIONTIME`` ...) are
no table's columns: never a read, never ambiguous.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from scoperouter.lineage.reads import Origin, Reads, Unresolved
from scoperouter.lineage.sql_names import (
    ML_FUNCTIONS,
    Schema,
    is_placeholder,
    line_of,
    table_name,
)
from scoperouter.lineage.sql_owner import read_elsewhere
from scoperouter.lineage.sql_shape import branches, output_names, star_of

# BigQuery pseudo-columns: of a wildcard table, an ingestion-time partitioned table, an
# external table, a change-history function's result -- read by a query, never a column of
# the table (https://cloud.google.com/bigquery/docs/querying-wildcard-tables and the pages
# on partitioned and external tables); upper case, compared upper-cased
PSEUDO_COLUMNS = frozenset(
    {"_TABLE_SUFFIX", "_PARTITIONTIME", "_PARTITIONDATE", "_FILE_NAME", "_CHANGE_TYPE",
     "_CHANGE_TIMESTAMP"}
)  # fmt: skip


class Resolver:
    def __init__(self, reads: Reads, schema: Schema, base: Origin) -> None:
        self.reads = reads
        # BigQuery column names are case-insensitive: the declared ones lowered, each name
        # looked up lowered
        self.schema: Schema = {t: frozenset(c.lower() for c in cols) for t, cols in schema.items()}
        self.base = base
        self.targets: set[str] = set()  # names and aliases of the statement's written tables
        self.variables: set[str] = set()  # the script's variables (DECLARE, FOR), lowered
        self._opaque: set[int] = set()  # built-in table functions whose columns were unknown

    def variable(self, scope: Scope, name: str) -> bool:
        """Whether an unqualified ``name`` is a script variable: declared so, and no source of
        ``scope`` declares a column of that name (a column would take precedence)."""
        if name.lower() not in self.variables:
            return False
        return not any(
            name.lower() in self.schema.get(table_name(src), ())
            for _n, src in scope.selected_sources.values()
            if isinstance(src, exp.Table)
        )

    def table(self, t: exp.Table) -> str | None:
        name = table_name(t)
        if is_placeholder(t.name) or is_placeholder(t.db):
            self.reads.unresolved.append(
                Unresolved(line_of(t, self.base), "table name built at run time")
            )
            return None
        if not name:
            return None  # a built-in table-valued function: its arguments are the reads
        if isinstance(t.this, exp.Anonymous) and not t.db:
            # a built-in sqlglot does not know (EXTERNAL_QUERY: another database's tables),
            # never a table of ours: unresolved, not a read of a table named after it
            self.reads.unresolved.append(
                Unresolved(
                    line_of(t, self.base),
                    f"table-valued function {name}: the tables it reads are unknown",
                )
            )
            return None
        self.reads.add_table(name, line_of(t, self.base))
        if isinstance(t.this, exp.Anonymous):
            self.reads.unresolved.append(
                Unresolved(
                    line_of(t, self.base),
                    f"table-valued function {name}: the tables it reads are unknown",
                )
            )
        return name

    def column(self, source: object, name: str, node: exp.Expression, depth: int = 0) -> None:
        where = line_of(node, self.base)
        if isinstance(source, exp.Table):
            tname = self.table(source)
            if tname is not None and name.upper() not in PSEUDO_COLUMNS:
                self.reads.add_column(tname, name, where)
            elif (
                tname is None
                and isinstance(source.this, exp.Func)
                and not isinstance(source.this, tuple(ML_FUNCTIONS))  # listed with its model
                and not table_name(source)
                and id(source) not in self._opaque
            ):
                # a built-in table function (GAP_FILL, VECTOR_SEARCH): the columns taken of
                # its result come from its TABLE argument, unknown here -- listed, not lost
                self._opaque.add(id(source))
                self.reads.unresolved.append(
                    Unresolved(where, f"columns read through {source.this.sql_name()}(...) unknown")
                )
            return
        if not isinstance(source, Scope) or depth > 20:
            return
        if isinstance(source.expression, exp.Unnest | exp.Values):
            return
        if isinstance(source.expression, exp.SetOperation):
            self.set_column(source, name, node, depth)
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

    def set_column(self, source: Scope, name: str, node: exp.Expression, depth: int) -> None:
        """Column ``name`` of a UNION / INTERSECT / EXCEPT: the first branch's column of that
        name and each other branch's column at the same place (only a branch selecting
        ``*`` needs it: a named projection is read by the branch's own scope)."""
        parts = branches(source)
        first = output_names(parts[0])
        place = first.index(name) if first is not None and name in first else None
        self.column(parts[0], name, node, depth + 1)
        for branch in parts[1:]:
            selects = getattr(branch.expression, "selects", [])
            if not any(star_of(s) is not None for s in selects):
                continue
            names = output_names(branch)
            if place is not None and names is not None and place < len(names):
                self.column(branch, names[place], node, depth + 1)
                continue
            if names is None:
                stars = sorted(
                    table_name(src)
                    for _n, src in branch.selected_sources.values()
                    if isinstance(src, exp.Table)
                )
                why = f"its branch selecting * from {', '.join(stars) or 'a subquery'}"
                why += " has unknown columns"
            else:
                why = "its place in the first branch is unknown"
            self.reads.unresolved.append(
                Unresolved(line_of(node, self.base), f"column {name!r} of a UNION: {why}")
            )

    def candidates(
        self, scope: Scope, name: str, only: set[str] | None = None
    ) -> list[exp.Table | Scope]:
        """The sources of ``scope`` (of its sources ``only``) that can have column ``name``:
        a table whose columns are unknown or include it, a subquery projecting it or ``*``."""
        candidates: list[exp.Table | Scope] = []
        for _alias, (_node, src) in scope.selected_sources.items():
            if only is not None and _alias not in only:
                continue
            if isinstance(src, exp.Table):
                known = self.schema.get(table_name(src))
                if known is None or name.lower() in known:  # (columns are lowered)
                    candidates.append(src)
            elif isinstance(src, Scope) and isinstance(src.expression, exp.Query):
                projects = {s.alias_or_name for s in src.expression.selects}
                if name in projects or "*" in projects:
                    candidates.append(src)
        return candidates

    def can_have(self, scope: Scope, name: str, fields: bool = True) -> bool:
        """Whether an unqualified ``name`` in ``scope`` is its own: a source's column, an
        UNNEST value, a projection alias, or (``fields``) maybe a field of an UNNEST's
        struct or a VALUES row -- any name, so no evidence against an enclosing column."""
        sel = scope.selected_sources
        if name in sel and isinstance(sel[name][1], Scope | exp.Unnest):
            return True
        if self.candidates(scope, name):
            return True
        if fields and any(
            isinstance(src.expression if isinstance(src, Scope) else src, exp.Unnest | exp.Values)
            for _n, src in sel.values()
        ):
            return True
        return any(
            isinstance(s, exp.Alias) and s.alias == name
            for s in getattr(scope.expression, "selects", [])
        )

    def unqualified(
        self,
        scope: Scope,
        name: str,
        node: exp.Expression,
        depth: int = 0,
        only: set[str] | None = None,
    ) -> None:
        """A column naming no source: the one source of ``scope`` (of its sources ``only``,
        when given) that can have it, else unresolved."""
        sel = scope.selected_sources
        if only is None and name in sel and isinstance(sel[name][1], Scope | exp.Unnest):
            return  # the value of an UNNEST alias
        if name.upper() in PSEUDO_COLUMNS:
            return  # no table's column (its tables are read all the same)
        candidates = self.candidates(scope, name, only)
        same = {table_name(c) for c in candidates if isinstance(c, exp.Table)}
        if len(candidates) == 1 or (
            len(same) == 1
            and len(candidates) > 1
            and all(isinstance(c, exp.Table) for c in candidates)
        ):
            self.column(candidates[0], name, node, depth)  # (a self-join: the same table)
            return
        if not candidates and any(
            isinstance(src.expression if isinstance(src, Scope) else src, exp.Unnest | exp.Values)
            for _n, src in sel.values()
        ):
            return  # a field of an unnested struct (or a VALUES row): no table's column
        where = line_of(node, self.base)
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


# Clauses where BigQuery lets a name stand for a projection alias (nowhere else: a name in
# SELECT, WHERE or ON is a column even when a projection has its name -- SUM(pts) AS pts)
_ALIAS_CLAUSES = (exp.Group, exp.Having, exp.Qualify, exp.Order)


def _alias_visible(col: exp.Column, top: object) -> bool:
    """Whether ``col`` sits in a clause of ``top`` where projection aliases are visible (a
    window's own ORDER BY is not the query's: the window's place decides)."""
    node = col.parent
    while node is not None and node is not top:
        if isinstance(node, _ALIAS_CLAUSES) and not (
            isinstance(node, exp.Order) and isinstance(node.parent, exp.Window)
        ):
            return True
        node = node.parent
    return False


def _hole_is_column(col: exp.Column, top: object) -> bool:
    """Whether a template hole parsed as a column stands for columns (a projection, a GROUP
    BY / ORDER BY / PARTITION BY key), not for a value (an operand of a comparison, IN,
    BETWEEN; anything in WHERE / ON / HAVING / QUALIFY / LIMIT)."""
    if isinstance(col.parent, exp.Predicate | exp.Interval):
        return False
    node: exp.Expr = col
    while node.parent is not None and node is not top:
        parent = node.parent
        if isinstance(parent, exp.Where | exp.Join | exp.Having | exp.Qualify | exp.Limit):
            return False
        if isinstance(parent, exp.Group | exp.Order | exp.Window):
            return True
        if parent is top:  # a projection of the query
            return isinstance(top, exp.Select) and node.arg_key == "expressions"
        node = parent
    return False


def _scope_columns(scope: Scope) -> list[exp.Column]:
    """The columns of ``scope``: sqlglot's (with correlated ones of its subqueries) plus the
    unqualified ones it leaves out in HAVING, QUALIFY and ORDER BY as possible aliases."""
    cols = list(scope.columns)
    seen = {id(c) for c in cols}
    for node in scope.walk():
        if (
            type(node) is exp.Column
            and not isinstance(node.this, exp.Star)
            and id(node) not in seen
        ):
            seen.add(id(node))
            cols.append(node)
    return cols


def _using_reads(scope: Scope, r: Resolver) -> None:
    """``JOIN t USING (k)`` reads k from t and from the one source before it having k."""
    expr = scope.expression
    sel = scope.selected_sources
    from_ = expr.args.get("from_") if isinstance(expr, exp.Select) else None
    if from_ is None:
        return
    left = {from_.this.alias_or_name}
    for join in expr.args.get("joins") or []:
        right = join.this.alias_or_name
        for ident in join.args.get("using") or []:
            name = ident.name
            if right in sel:
                r.column(sel[right][1], name, ident if ident.meta else join)
            r.unqualified(scope, name, join, only=set(left))
        left.add(right)


def _column_hole(scope: Scope, col: exp.Column, r: Resolver) -> None:
    """A column named at run time: unresolved, unless every source of the scope is a table
    named at run time (already unresolved as such)."""
    known = [
        src
        for _n, src in scope.selected_sources.values()
        if not (isinstance(src, exp.Table) and is_placeholder(table_name(src)))
    ]
    if not known:
        return
    tables = sorted(n for src in known if isinstance(src, exp.Table) and (n := table_name(src)))
    what = f" of {', '.join(tables)}" if tables else ""
    r.reads.unresolved.append(
        Unresolved(
            line_of(col, r.base),
            f"column name built at run time: the columns{what} it reads are unknown",
        )
    )


def scope_reads(scope: Scope, r: Resolver) -> None:
    sel = scope.selected_sources
    inner = {id(s.expression): s for s in scope.traverse()}
    for _alias, (_node, src) in sel.items():
        if isinstance(src, exp.Table):
            r.table(src)
    aliases = {
        s.alias for s in getattr(scope.expression, "selects", []) if isinstance(s, exp.Alias)
    }
    for col in _scope_columns(scope):
        name = col.name
        if is_placeholder(name) and _hole_is_column(col, scope.expression):
            _column_hole(scope, col, r)
            continue
        if is_placeholder(name) or not name:
            continue
        qual = col.table
        head = col.parts[0].name if col.parts else qual
        if (head if qual else name) not in sel and r.variable(scope, head if qual else name):
            continue  # a script variable (d, or d.field of a FOR loop's row)
        if not qual and read_elsewhere(scope, col, r, inner):
            continue
        if qual and qual in sel:
            r.column(sel[qual][1], name, col)
        elif qual:
            outer = _outer_source(scope, qual)
            if head in sel and len(col.parts) > 1:  # alias.struct.field
                r.column(sel[head][1], col.parts[1].name, col)
            elif outer is not None:  # a correlated subquery naming an outer alias
                r.column(outer, name, col)
            elif qual in r.targets:
                continue  # the written table's own column (UPDATE ... SET a = (SELECT ... t.k))
            else:  # struct.field of an unqualified column
                r.unqualified(scope, head, col)
        elif name in aliases and _alias_visible(col, scope.expression):
            continue  # a projection alias (QUALIFY rn = 1, ORDER BY total)
        else:
            r.unqualified(scope, name, col)
    _using_reads(scope, r)


def expose(scope: Scope, r: Resolver, depth: int = 0) -> None:
    """``scope``'s output is taken whole (the statement's result, a UNION branch of it, an IN
    subquery, a MERGE's INSERT ROW, the source of a ``SELECT *`` taken whole): a star
    over a table there leaves that table's columns unknown."""
    if depth > 20:
        return
    expr = scope.expression
    if isinstance(expr, exp.SetOperation):
        for branch in scope.set_operation_scopes:
            expose(branch, r, depth + 1)
        return
    sel = scope.selected_sources
    for s in getattr(expr, "selects", []):
        if star_of(s) is None:
            continue
        qual = s.table if isinstance(s, exp.Column) else ""
        sources = [sel[qual][1]] if qual in sel else [] if qual else [v[1] for v in sel.values()]
        tables = []
        for src in sources:
            if isinstance(src, exp.Table) and (n := table_name(src)) and not is_placeholder(n):
                tables.append(n)  # (a table named at run time is unresolved already)
            elif isinstance(src, Scope):
                expose(src, r, depth + 1)
        if tables:
            r.reads.unresolved.append(
                Unresolved(
                    line_of(s, r.base),
                    f"SELECT * from {', '.join(sorted(tables))}: columns unknown",
                )
            )
