"""The shape of a sqlglot scope's output: its ``*`` projections, a set operation's
branches, and the names of its output columns in order.

Invariant: a name list is returned only when every column is known from the SQL itself
(``*`` expanded through subqueries and CTEs, less its EXCEPT names); a ``*`` over a table,
whose columns and their order the SQL does not say, gives None, never a guess.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope


def star_of(s: exp.Expr) -> exp.Expr | None:
    """The star of a projection ``*`` / ``t.*`` (EXCEPT / REPLACE included), else None."""
    star = s if isinstance(s, exp.Star) else s.this if isinstance(s, exp.Column) else None
    return star if isinstance(star, exp.Star) else None


def branches(scope: Scope) -> list[Scope]:
    """The branches of a set operation's scope, left to right (nested ones flattened)."""
    if not isinstance(scope.expression, exp.SetOperation):
        return [scope]
    return [b for sub in scope.set_operation_scopes for b in branches(sub)]


def output_names(scope: Scope, depth: int = 0) -> list[str] | None:
    """The names of ``scope``'s output columns in order, ``*`` expanded through subqueries
    and CTEs (less its EXCEPT names); None when a star's columns are a table's (unknown)."""
    expr = scope.expression
    if isinstance(expr, exp.SetOperation):
        return output_names(branches(scope)[0], depth + 1)
    if not isinstance(expr, exp.Select) or depth > 20:
        return None
    sel = scope.selected_sources
    out: list[str] = []
    for s in expr.selects:
        star = star_of(s)
        if star is None:
            out.append(s.alias_or_name)
            continue
        qual = s.table if isinstance(s, exp.Column) else ""
        srcs = [sel[qual][1]] if qual in sel else [] if qual else [v[1] for v in sel.values()]
        if len(srcs) != 1 or not isinstance(srcs[0], Scope) or star.args.get("rename"):
            return None
        inner = output_names(srcs[0], depth + 1)
        if inner is None:
            return None
        dropped = {e.name for e in star.args.get("except_") or []}
        out.extend(n for n in inner if n not in dropped)
    return out
