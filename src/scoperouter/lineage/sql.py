"""Reads of SQL text, parsed with sqlglot's BigQuery dialect (never regular expressions).

Invariant: every table a statement reads and every column it uses from each are derived
from the parse tree's scopes (CTEs and subqueries resolved to the tables under them);
written tables (INSERT/MERGE/CREATE/DELETE/UPDATE targets) are not reads, while the columns
a MERGE / UPDATE takes from its USING / FROM source are; a name built at run time (a
template placeholder), an ambiguous column or a ``SELECT *`` reaching the result is an
:class:`~scoperouter.lineage.reads.Unresolved` entry, never a guess; each statement is parsed
alone, so one that does not parse leaves only itself unresolved. Per-scope resolution is
:mod:`scoperouter.lineage.sql_scope`.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

from scoperouter.lineage.reads import Origin, Reads, Unresolved
from scoperouter.lineage.sql_names import (
    ML_FUNCTIONS,
    PLACEHOLDER,
    Schema,
    fold_names,
    is_placeholder,
    line_of,
    table_name,
)
from scoperouter.lineage.sql_scope import Resolver, expose, scope_reads

__all__ = ["PLACEHOLDER", "Schema", "is_placeholder", "sql_reads", "table_name"]


_DIALECT = Dialect.get_or_raise("bigquery")
_WRITES = (exp.Insert, exp.Merge, exp.Create, exp.Delete, exp.Update)


def _source_of(node: exp.Expression, scopes: dict[int, Scope], ctes: dict[str, exp.CTE]) -> object:
    """What a MERGE USING / UPDATE FROM source stands for: a table, or the scope of its
    subquery or of the CTE it names."""
    if isinstance(node, exp.Subquery):
        return scopes.get(id(node.this)) or scopes.get(id(node))
    if isinstance(node, exp.Table) and not node.db and node.name in ctes:
        return scopes.get(id(ctes[node.name].this))
    return node


def _inserts_row(stmt: exp.Merge) -> bool:
    """Whether a WHEN NOT MATCHED clause inserts the whole source row (``INSERT ROW``)."""
    for w in stmt.find_all(exp.When):
        then = w.args.get("then")
        if (
            isinstance(then, exp.Insert)
            and isinstance(then.this, exp.Var)
            and then.this.name.upper() == "ROW"
        ):
            return True
    return False


def _dml_reads(stmt: exp.Expression, r: Resolver, scopes: dict[int, Scope]) -> set[int]:
    """MERGE and UPDATE are no query scopes: the columns their ON / WHEN / SET / WHERE
    clauses take from the USING / FROM source (a table, a subquery, a CTE); a MERGE's
    ``INSERT ROW`` takes all of them. Returns the ids of the source tables."""
    ctes = {c.alias: c for c in stmt.find_all(exp.CTE)}
    sources: dict[str, object] = {}
    using = stmt.args.get("using") if isinstance(stmt, exp.Merge) else None
    if isinstance(using, exp.Expression):
        src = sources[using.alias_or_name] = _source_of(using, scopes, ctes)
        if isinstance(stmt, exp.Merge) and _inserts_row(stmt):
            if isinstance(src, Scope):
                expose(src, r)
            elif isinstance(src, exp.Table) and (n := table_name(src)):
                r.reads.unresolved.append(
                    Unresolved(line_of(using, r.base), f"INSERT ROW from {n}: columns unknown")
                )
    from_ = stmt.args.get("from_") if isinstance(stmt, exp.Update) else None
    if isinstance(from_, exp.From):
        for node in (from_.this, *(j.this for j in stmt.args.get("joins") or [])):
            sources[node.alias_or_name] = _source_of(node, scopes, ctes)
    merge_src = sources.get(using.alias_or_name) if isinstance(using, exp.Expression) else None
    inserted = _insert_values(stmt) if merge_src is not None else set()
    for col in stmt.find_all(exp.Column) if sources else ():
        src = sources.get(col.table)
        if src is None and not col.table and id(col) in inserted:
            # a MERGE's INSERT VALUES: no target row exists, an unqualified name is the
            # source's column (it was dropped, even under --strict)
            src = merge_src
        if src is not None and col.find_ancestor(exp.Select) is None:
            r.column(src, col.name, col)
    return {id(v) for v in sources.values() if isinstance(v, exp.Table)}


def _insert_values(stmt: exp.Expression) -> set[int]:
    """The ids of the columns in a MERGE's ``WHEN NOT MATCHED THEN INSERT ... VALUES (...)``
    values (not its column list: those name the target's columns)."""
    out: set[int] = set()
    for ins in stmt.find_all(exp.Insert):
        values = ins.args.get("expression")
        if isinstance(ins.parent, exp.When) and isinstance(values, exp.Expression):
            out |= {id(c) for c in values.find_all(exp.Column)}
    return out


_NESTED = (exp.Query, exp.Insert, exp.Merge, exp.Update, exp.Delete)


def _outer_queries(stmt: exp.Expression) -> list[exp.Expression]:
    """The outermost queries (and DML statements) under a statement sqlglot gives no scopes
    of (EXPORT DATA ... AS SELECT, DECLARE ... DEFAULT (SELECT ...), SET x = (SELECT ...),
    FOR ... IN (SELECT ...) DO ..., ASSERT (...), INSERT ... VALUES ((SELECT ...)))."""
    out: list[exp.Expression] = []
    stack = [c for c in stmt.iter_expressions() if c is not stmt]
    while stack:
        node = stack.pop(0)
        if isinstance(node, _NESTED):
            out.append(node)
            continue
        stack.extend(node.iter_expressions())
    return out


def _statement_reads(stmt: exp.Expression, r: Resolver) -> None:
    targets: set[int] = set()
    r.targets = set()
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
            r.targets |= {target.name, target.alias_or_name}
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
    scopes = traverse_scope(stmt)
    if not scopes:  # a statement holding queries sqlglot has no scopes of (EXPORT DATA...)
        for root in _outer_queries(stmt):
            scopes.extend(traverse_scope(root))
    for scope in scopes:
        scope_reads(scope, r)
        if (scope.is_root and not isinstance(scope.expression.parent, exp.Exists)) or (
            scope.scope_type == ScopeType.SUBQUERY
            and not isinstance(scope.expression.parent, exp.Exists)
            and not isinstance(stmt, exp.Merge | exp.Update)  # their sources: _dml_reads
        ):
            expose(scope, r)
    covered = _dml_reads(stmt, r, {id(s.expression): s for s in scopes})
    covered |= {id(t) for s in scopes for t in s.tables}
    for fn in stmt.find_all(*ML_FUNCTIONS):
        if isinstance(fn.this, exp.Table):
            targets.add(id(fn.this))  # MODEL m: no table
        arg = fn.args.get("expression")
        if isinstance(arg, exp.Table) and (name := r.table(arg)):
            covered.add(id(arg))
            what = f"columns of {name} unknown: the model of {ML_FUNCTIONS[type(fn)]} reads them"
            r.reads.unresolved.append(Unresolved(line_of(arg, r.base), what))
    for t in stmt.find_all(exp.Table):  # e.g. MERGE ... USING table
        if id(t) not in targets and not (not t.db and t.name in ctes):
            name = r.table(t)
            if name and id(t) not in covered:  # read outside any query: columns unknown
                r.reads.unresolved.append(
                    Unresolved(line_of(t, r.base), f"columns of {name} unknown")
                )


# BigQuery scripting that sqlglot keeps as an opaque ``Command`` (its text unparsed).
# A block opener's body is plain SQL: it is parsed again (by sqlglot).
_BLOCK_OPENERS = frozenset({"BEGIN", "LOOP", "REPEAT"})


def _command_reads(
    cmd: exp.Command, reads: Reads, origin: Origin, schema: Schema, depth: int, names: set[str]
) -> None:
    """The reads of a statement sqlglot could only keep as text: a BEGIN/LOOP/REPEAT block's
    body is parsed again; anything else (EXECUTE IMMEDIATE, CALL...) is unresolved."""
    keyword = str(cmd.this or "").strip().upper()
    arg = cmd.args.get("expression")
    rest = arg.name if isinstance(arg, exp.Expression) else str(arg or "")
    if keyword == "END":
        return  # END / END LOOP / END WHILE / END IF close a block
    if keyword in _BLOCK_OPENERS and depth < 10:
        if rest.strip():
            inner = _sql_reads(rest, origin, schema, depth + 1, names)
            reads.merge(inner)
            reads.parsed = reads.parsed and inner.parsed
        return
    shown = f"{keyword} {rest}".strip().splitlines()[0][:60]
    reads.unresolved.append(
        Unresolved(origin, f"SQL not analysable ({shown}...): the tables it reads are unknown")
    )


# scripting heads sqlglot does not parse, and the keyword ending their condition ("": no
# condition; a CASE statement's condition follows its WHEN)
_SCRIPT_HEADS = {
    "IF": "THEN",
    "ELSEIF": "THEN",
    "WHILE": "DO",
    "CASE": "THEN",
    "WHEN": "THEN",
    "UNTIL": "END",
    "EXCEPTION": "THEN",
    "ELSE": "",
    "RAISE": "",
}


def _pad(text: str, at: int) -> str:
    """``text`` from ``at``, preceded by the line breaks before it (lines stay true)."""
    return "\n" * text.count("\n", 0, at) + text[at:]


def _script_parts(chunk: str) -> tuple[str, str] | None:
    """A scripting statement sqlglot cannot parse -- ``IF`` / ``ELSEIF cond THEN``, ``WHILE
    cond DO``, ``CASE WHEN`` / ``WHEN cond THEN``, ``UNTIL cond END REPEAT``, ``ELSE``,
    ``EXCEPTION WHEN ERROR THEN`` and the first statement of its body; ``RAISE`` (no read)
    -- as (its condition, its body), each padded to keep its lines; else None. The ending
    keyword is found by sqlglot's tokenizer outside parentheses (never in a string)."""
    try:
        tokens = _DIALECT.tokenize(chunk)
    except SqlglotError:
        return None
    head = tokens[0].text.upper() if tokens else ""
    if head not in _SCRIPT_HEADS:
        return None
    if head == "RAISE":
        return "", ""  # RAISE USING MESSAGE = ...: ends the script, reads nothing
    end = _SCRIPT_HEADS[head]
    rest = _pad(chunk, tokens[0].end + 1)
    if not end:
        return "", rest
    try:
        inner = _DIALECT.tokenize(rest)
    except SqlglotError:
        return None
    if head == "CASE":  # a searched CASE statement: CASE WHEN cond THEN ...
        if not inner or inner[0].text.upper() != "WHEN":
            return None
        rest = _pad(rest, inner[0].end + 1)
        inner = _DIALECT.tokenize(rest)
    depth = 0
    for tok in inner:
        kind = tok.token_type.name
        depth += (kind == "L_PAREN") - (kind == "R_PAREN")
        if depth == 0 and tok.text.upper() == end:
            cond = "" if head == "EXCEPTION" else rest[: tok.start]  # WHEN ERROR
            return cond, _pad(rest, tok.end + 1)
    return None


def _declared(stmt: exp.Expression) -> set[str]:
    """The script variables ``stmt`` declares: DECLARE's names, a FOR loop's variable."""
    out: set[str] = set()
    for item in stmt.find_all(exp.DeclareItem):
        names = item.this if isinstance(item.this, list) else [item.this]
        out |= {n.name.lower() for n in names if isinstance(n, exp.Expression)}
    if isinstance(stmt, exp.ForIn) and isinstance(stmt.this, exp.In):
        var = stmt.this.this
        if isinstance(var, exp.Column) and not var.table:
            out.add(var.name.lower())
    return out


def sql_reads(text: str, origin: Origin, schema: Schema | None = None) -> Reads:
    """The reads of ``text`` (one or more statements). Each statement is parsed alone: one
    sqlglot cannot parse is one unresolved entry at its line, the others' reads are kept."""
    return _sql_reads(text, origin, schema or {}, 0, set())


def _unparsed(exc: Exception, where: Origin) -> Unresolved:
    first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return Unresolved(where, f"SQL that does not parse: {first}")


def split_statements(text: str) -> list[tuple[str, int]] | None:
    """``text``'s statements, split at the semicolons sqlglot's BigQuery tokenizer finds
    (never one inside a string, a quoted name or a comment): each statement's text, padded
    with the newlines before it (its parse tree's lines are the whole text's), and its first
    line; None when the text does not tokenize (an unterminated string...)."""
    try:
        tokens = _DIALECT.tokenize(text)
    except SqlglotError:
        return None
    out: list[tuple[str, int]] = []
    start = 0
    first: int | None = None
    for tok in (*tokens, None):
        if tok is not None and tok.token_type.name != "SEMICOLON":
            if first is None:
                first = tok.line
            continue
        end = tok.start if tok is not None else len(text)
        if first is not None:
            out.append(("\n" * text.count("\n", 0, start) + text[start:end], first))
        start, first = end + 1, None
    return out


def _sql_reads(text: str, origin: Origin, schema: Schema, depth: int, names: set[str]) -> Reads:
    """``names``: the script's variables (never a table's column), shared by its blocks."""
    reads = Reads()
    r = Resolver(reads, schema, origin)
    r.variables = names
    chunks = split_statements(text)
    if chunks is None:  # does not tokenize: nothing of it can be read
        try:
            sqlglot.parse(text, read="bigquery")
            exc: Exception = SqlglotError("SQL that does not tokenize")
        except SqlglotError as err:
            exc = err
        reads.unresolved.append(_unparsed(exc, origin))
        reads.parsed = False
        return reads
    for chunk, line in chunks:
        parts = _script_parts(chunk) if depth < 10 else None
        if parts is not None:  # IF / ELSEIF / WHILE / ELSE / EXCEPTION: condition, body
            cond, body = parts
            if cond.strip():
                try:
                    expr = sqlglot.parse_one(cond, read="bigquery")
                    if isinstance(expr, exp.Expression):
                        fold_names(expr)
                        _statement_reads(expr, r)
                except SqlglotError as exc:
                    reads.unresolved.append(
                        _unparsed(exc, Origin(origin.file, origin.line + line - 1))
                    )
                    reads.parsed = False
            if body.strip():
                inner = _sql_reads(body, origin, schema, depth + 1, names)
                reads.merge(inner)
                reads.parsed = reads.parsed and inner.parsed
            continue
        try:
            statements = sqlglot.parse(chunk, read="bigquery")
        except SqlglotError as exc:
            reads.unresolved.append(_unparsed(exc, Origin(origin.file, origin.line + line - 1)))
            reads.parsed = False
            continue
        for stmt in statements:
            if not isinstance(stmt, exp.Expression):
                continue
            fold_names(stmt)
            names |= _declared(stmt)
            for cmd in stmt.find_all(exp.Command):
                _command_reads(cmd, reads, origin, schema, depth, names)
            try:
                _statement_reads(stmt, r)
            except SqlglotError as exc:
                reads.unresolved.append(Unresolved(origin, f"SQL not analysable: {exc}"))
    reads.unresolved = list(dict.fromkeys(reads.unresolved))  # once per place and reason
    return reads
