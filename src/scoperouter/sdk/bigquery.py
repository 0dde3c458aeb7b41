"""Scope filters for SQL: values only ever travel as query parameters.

:func:`entity_filter` builds a BigQuery ``WHERE`` fragment plus the
``google-cloud-bigquery`` query parameters that go with it::

    sql, params = entity_filter(scope, column="player_lookup")
    # entity scope: WHERE player_lookup IN UNNEST(@entity_ids)
    #                 AND game_date BETWEEN @start_date AND @end_date
    # full date:    WHERE game_date BETWEEN @start_date AND @end_date
    job = client.query(f"SELECT * FROM `nba_raw.x` {sql}",
                       job_config=bigquery.QueryJobConfig(query_parameters=params))

:func:`qmark_filter` does the same for DB-API drivers using ``?`` placeholders (sqlite3).
Every helper takes the entity column explicitly (the table's id column: ``player_lookup``,
``customer_id``...); ``date_column`` defaults to ``game_date``, the registry's default
``date_field``. Column names are checked against an identifier pattern; entity ids and
dates never appear in the SQL text. ``google-cloud-bigquery`` is an optional dependency (extra
``scoperouter[bigquery]``), imported only when :func:`entity_filter` is called.
"""

from __future__ import annotations

import re
from typing import Any

from scoperouter.sdk.scope import Scope

#: A column, optionally qualified by a table alias (``t.player_lookup``).
#: Use with ``fullmatch`` only (``$`` would accept a trailing newline).
IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127})?")
_PARAM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_identifier(name: str, what: str = "column") -> str:
    """Return ``name`` if it is a plain (optionally alias-qualified) SQL identifier.

    Raises :class:`ValueError` otherwise: column names cannot be query parameters, so
    they must never come from untrusted input unchecked.
    """
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise ValueError(
            f"invalid {what} name {name!r}: expected letters, digits and _ (optionally alias.column)"
        )
    return name


def _entity_ids(scope: Scope) -> tuple[str, ...]:
    """The ids of an entity scope; refuses an empty list (``IN ()`` is invalid SQL).

    :class:`Scope` validation already forbids it, but ``model_construct``/``model_copy``
    bypass validation, so the SQL helpers check again rather than emit broken SQL.
    """
    if not scope.entity_ids:
        raise ValueError("an 'entities' scope with no entity ids cannot be turned into a filter")
    return scope.entity_ids


def _bigquery() -> Any:
    try:
        from google.cloud import bigquery
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "scoperouter.sdk.bigquery needs google-cloud-bigquery: pip install 'scoperouter[bigquery]'"
        ) from exc
    return bigquery


def filter_sql(
    scope: Scope,
    column: str,
    *,
    date_column: str = "game_date",
    param_prefix: str = "",
    keyword: str = "WHERE",
) -> str:
    """The BigQuery SQL text of :func:`entity_filter` (no values, only ``@`` parameters)."""
    check_identifier(column)
    check_identifier(date_column, "date column")
    if param_prefix and not _PARAM_RE.fullmatch(param_prefix):
        raise ValueError(f"invalid parameter prefix {param_prefix!r}")
    if keyword not in ("WHERE", "AND", ""):
        raise ValueError("keyword must be 'WHERE', 'AND' or ''")
    p = param_prefix
    clause = f"{date_column} BETWEEN @{p}start_date AND @{p}end_date"
    if not scope.is_full_date:
        _entity_ids(scope)
        clause = f"{column} IN UNNEST(@{p}entity_ids) AND {clause}"
    return f"{keyword} {clause}" if keyword else clause


def entity_filter(
    scope: Scope,
    column: str,
    *,
    date_column: str = "game_date",
    param_prefix: str = "",
    keyword: str = "WHERE",
) -> tuple[str, list[Any]]:
    """``(sql_fragment, query_parameters)`` restricting a BigQuery query to ``scope``.

    Entity scope: ``WHERE <column> IN UNNEST(@entity_ids) AND <date_column> BETWEEN
    @start_date AND @end_date``; full date: only the date clause. The parameters are an
    ``ArrayQueryParameter("entity_ids", "STRING", ids)`` (entity scope only) and two
    ``ScalarQueryParameter(..., "DATE", ...)``. ``param_prefix`` renames the parameters
    (``@<prefix>entity_ids``...) when one query filters several tables; ``keyword``
    ``"AND"`` appends to an existing ``WHERE``.
    """
    sql = filter_sql(
        scope, column, date_column=date_column, param_prefix=param_prefix, keyword=keyword
    )
    bq = _bigquery()
    p = param_prefix
    params: list[Any] = []
    if not scope.is_full_date:
        params.append(bq.ArrayQueryParameter(f"{p}entity_ids", "STRING", list(_entity_ids(scope))))
    params.append(bq.ScalarQueryParameter(f"{p}start_date", "DATE", scope.start_date))
    params.append(bq.ScalarQueryParameter(f"{p}end_date", "DATE", scope.end_date))
    return sql, params


def query_job_config(scope: Scope, column: str, **kwargs: Any) -> tuple[str, Any]:
    """``(sql_fragment, bigquery.QueryJobConfig)`` -- :func:`entity_filter` ready for ``client.query``."""
    sql, params = entity_filter(scope, column, **kwargs)
    return sql, _bigquery().QueryJobConfig(query_parameters=params)


def qmark_filter(
    scope: Scope,
    column: str,
    *,
    date_column: str = "game_date",
    keyword: str = "WHERE",
) -> tuple[str, list[str]]:
    """``(sql_fragment, params)`` for DB-API ``?`` placeholders (sqlite3), dates as ISO strings.

    Entity scope: ``WHERE <column> IN (?, ?, ...) AND <date_column> BETWEEN ? AND ?``.
    """
    check_identifier(column)
    check_identifier(date_column, "date column")
    if keyword not in ("WHERE", "AND", ""):
        raise ValueError("keyword must be 'WHERE', 'AND' or ''")
    clause = f"{date_column} BETWEEN ? AND ?"
    params = [scope.start_date.isoformat(), scope.end_date.isoformat()]
    if not scope.is_full_date:
        ids = _entity_ids(scope)
        marks = ", ".join("?" for _ in ids)
        clause = f"{column} IN ({marks}) AND {clause}"
        params = [*ids, *params]
    return (f"{keyword} {clause}" if keyword else clause), params


def _name(ref: Any) -> str | None:
    ds, table = getattr(ref, "dataset_id", None), getattr(ref, "table_id", None)
    return f"{ds}.{table}" if ds and table else None


def referenced_tables(*jobs: Any) -> list[str]:
    """``dataset.table`` of every table the given BigQuery jobs read (``QueryJob.
    referenced_tables``: ``TableReference`` objects), sorted and unique -- for a completion
    event's ``referenced_tables`` (``build_completion_event(referenced_tables=...)``), so
    the router can count reads routes.yaml does not declare. A table one of the given jobs
    wrote (its ``destination``: a staging table the run writes, then reads) is left out,
    as ``lineage --jobs`` leaves out a processor's own writes: pass all of a run's jobs."""
    written = {_name(getattr(job, "destination", None)) for job in jobs}
    out: set[str] = set()
    for job in jobs:
        for ref in getattr(job, "referenced_tables", None) or ():
            name = _name(ref)
            if name and name not in written:
                out.add(name)
    return sorted(out)
