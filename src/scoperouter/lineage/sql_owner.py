"""Which query reads an unqualified column of a subquery: sqlglot lists such a column in
every enclosing scope as possibly correlated; one scope only must read it.

Invariant: the innermost scope one of whose sources can have the name reads it; a subquery
whose only claim is an UNNEST's struct fields or a VALUES row (any name) leaves it to an
enclosing query whose source can have it; a claim resting only on a table of unknown
columns, against a declared enclosing table having it, is reported unresolved, never
decided in silence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from scoperouter.lineage.reads import Unresolved
from scoperouter.lineage.sql_names import line_of, table_name

if TYPE_CHECKING:
    from scoperouter.lineage.sql_scope import Resolver


def _assumed_inner(inner: Scope, scope: Scope, col: exp.Column, r: Resolver) -> None:
    """Unresolved when ``inner`` has ``col`` only as a table of unknown columns while a
    declared table of ``scope`` has it: BigQuery reads the enclosing one if that table lacks it."""
    name = col.name
    own = r.candidates(inner, name)
    if not own or not all(isinstance(c, exp.Table) and table_name(c) not in r.schema for c in own):
        return
    if name in inner.selected_sources or any(
        isinstance(p, exp.Alias) and p.alias == name
        for p in getattr(inner.expression, "selects", [])
    ):
        return
    outer = sorted(
        table_name(c)
        for c in r.candidates(scope, name)
        if isinstance(c, exp.Table) and name.lower() in r.schema.get(table_name(c), ())
    )
    if not outer:
        return
    mine = ", ".join(sorted({table_name(c) for c in own if isinstance(c, exp.Table)}))
    r.reads.unresolved.append(
        Unresolved(
            line_of(col, r.base),
            f"column {name!r} of a subquery: taken as {mine}'s, whose columns are unknown; "
            f"the enclosing query's {', '.join(outer)} has it (a correlated read if {mine} "
            "lacks it)",
        )
    )


def read_elsewhere(scope: Scope, col: exp.Column, r: Resolver, inner: dict[int, Scope]) -> bool:
    """Whether an unqualified column sqlglot lists in ``scope`` is another scope's read: in a
    subquery of ``scope`` (sqlglot lists its unqualified columns as possibly correlated),
    the innermost scope having it reads it; in a subquery none of whose sources has it, the
    enclosing query having it does (a correlated column)."""
    owner = inner.get(id(col.find_ancestor(exp.Select)))
    if owner is not None and owner is not scope:
        s: Scope | None = owner
        field = False  # maybe a field of an UNNEST / VALUES of a subquery in between
        while s is not None and s is not scope:
            if r.can_have(s, col.name, fields=False):
                _assumed_inner(s, scope, col, r)
                return True
            field = field or r.can_have(s, col.name)
            s = s.parent
        # a subquery over an UNNEST: the name is this query's column when a source of it
        # can have it (as BigQuery reads it unless the struct has such a field), else the field
        return field and not r.can_have(scope, col.name, fields=False)
    s = scope
    while s.is_subquery and s.parent is not None and not r.can_have(s, col.name):
        s = s.parent
        if r.can_have(s, col.name):
            return True
    return False
