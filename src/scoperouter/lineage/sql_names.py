"""How the SQL route names what it reads: a table as ``dataset.table``, a template hole as a
placeholder identifier, a node's place as a line of its file.

Invariant: a name built at run time is recognisable by its placeholder (never taken for a
real table); a table's name never carries its project (sources name dataset.table); a CTE
or an alias is one name however its references spell it (:func:`fold_names`), a table's
name keeps its case.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from scoperouter.lineage.reads import Origin

# BigQuery ML table functions sqlglot parses: ``ML.PREDICT(MODEL m, TABLE t | (query))``...
# The model is no table read; a ``TABLE t`` argument is read whole by the model (its input
# columns, unknown here), a query argument as any subquery
ML_FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.Predict: "ML.PREDICT",
    exp.GenerateText: "ML.GENERATE_TEXT",
    exp.MLTranslate: "ML.TRANSLATE",
    exp.MLForecast: "ML.FORECAST",
}
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


def line_of(node: exp.Expression, base: Origin) -> Origin:
    meta = getattr(node.this, "meta", None) if isinstance(node.this, exp.Expression) else None
    line = (meta or {}).get("line") or node.meta.get("line")
    return Origin(base.file, base.line + int(line) - 1) if line else base


def fold_names(stmt: exp.Expression) -> None:
    """Spell every reference to a CTE or an alias as it is defined, in place. BigQuery
    matches CTE names and table aliases (an ``AS`` name, or a table's own name standing
    for it) ignoring case, and sqlglot's scopes match them exactly: ``WITH Recent ...
    FROM recent`` read a table ``recent``, ``t.x FROM ds.t AS T`` a column ``t``. Table
    names are not folded (BigQuery's are case-sensitive): only a one-part name equal to a
    CTE's but for case becomes the CTE's; a reference already spelled like a definition
    is left alone."""
    ctes = {c.alias.lower(): c.alias for c in stmt.find_all(exp.CTE) if c.alias}
    for t in stmt.find_all(exp.Table):
        name = t.name
        if ctes and not t.db and isinstance(t.this, exp.Identifier):
            spelled = ctes.get(name.lower())
            if spelled is not None and spelled != name:
                t.set("this", exp.to_identifier(spelled, quoted=t.this.quoted))
    defined: dict[str, str] = {}
    for a in stmt.find_all(exp.TableAlias):
        if a.name:
            defined.setdefault(a.name.lower(), a.name)
    for t in stmt.find_all(exp.Table):
        if not t.alias and t.name:
            defined.setdefault(t.name.lower(), t.name)
    exact = set(defined.values())
    for col in stmt.find_all(exp.Column):
        q = col.args.get("table")
        if not isinstance(q, exp.Identifier) or col.args.get("db") or q.name in exact:
            continue
        spelled = defined.get(q.name.lower())
        if spelled is not None:
            col.set("table", exp.to_identifier(spelled, quoted=q.quoted))
