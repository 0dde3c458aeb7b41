"""``sources:`` from BigQuery's ``INFORMATION_SCHEMA.COLUMNS``: an export (JSON array, JSON
lines or CSV) or rows fetched live (:func:`fetch_columns`, a thin adapter).

Invariant: columns come out in ``ordinal_position`` order per ``dataset.table``; nested
``field_path`` rows (COLUMN_FIELD_PATHS) are not columns; what the registry already declares
about a source (entity, entity_key, keys, description) is kept, only ``columns`` is filled;
a source the registry declares and the export lacks is printed as declared (the block
replaces ``sources:``: pasting it drops no declaration).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from scoperouter.json_lines import json_lines
from scoperouter.processor_registry.models import RoutesSpec


def load_columns_export(path: Path) -> list[dict[str, Any]]:
    """The rows of an export: a CSV with a header, a JSON array of objects, or JSON lines
    (one object a line). Raises ValueError naming ``path:line`` at the first bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is no content
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        for i, r in enumerate(rows, 1):
            if not isinstance(r, dict):
                raise ValueError(f"{path}: row {i} of the array is not an object")
        return list(rows)
    out: list[dict[str, Any]] = []
    for n, row in json_lines(text, str(path)):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: a row must be a JSON object")
        out.append(row)
    return out


def columns_by_table(
    rows: Iterable[Mapping[str, Any]], dataset: str | None = None
) -> dict[str, tuple[str, ...]]:
    """``dataset.table`` -> its columns in ordinal order. ``dataset`` names rows that carry
    no ``table_schema`` (a one-dataset export). A row without them, or whose
    ``ordinal_position`` is no number, is a ValueError (naming the row, counted from 1)."""
    acc: dict[str, list[tuple[int, str]]] = {}
    for n, row in enumerate(rows, 1):
        ds = row.get("table_schema") or row.get("dataset_id") or dataset
        table, column = row.get("table_name"), row.get("column_name")
        if not (ds and table and column):
            raise ValueError(
                f"row {n}: a COLUMNS row needs table_schema, table_name, column_name: {row}"
            )
        raw = row.get("ordinal_position")
        try:
            pos = 0 if raw is None or raw == "" else int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"row {n}: ordinal_position must be a number, not {raw!r}") from None
        acc.setdefault(f"{ds}.{table}", []).append((pos, str(column)))
    return {t: tuple(dict.fromkeys(c for _p, c in sorted(cols))) for t, cols in acc.items()}


def sources_block(
    columns: Mapping[str, tuple[str, ...]], spec: RoutesSpec | None = None, only_named: bool = True
) -> str:
    """A ``sources:`` YAML block: every table of ``columns`` (only those the registry names,
    when a registry is given and ``only_named``), merged over its existing declarations; then,
    under a comment, every source the registry declares that ``columns`` lacks, unchanged --
    the block replaces ``sources:`` and must drop no declaration (see :func:`not_in_export`)."""
    named: set[str] = set()
    existing: dict[str, dict[str, Any]] = {}
    if spec is not None:
        named = {i.source for p in spec.processors.values() for i in p.inputs}
        named |= {p.publishes for p in spec.processors.values() if p.publishes}
        named |= set(spec.sources)
        existing = {
            k: v.model_dump(exclude_none=True, exclude_defaults=True)
            for k, v in spec.sources.items()
        }
    out: dict[str, dict[str, Any]] = {}
    for table in sorted(columns):
        if spec is not None and only_named and table not in named:
            continue
        entry = dict(existing.get(table, {}))
        entry["columns"] = list(columns[table])
        out[table] = entry
    kept = {t: existing[t] for t in not_in_export(columns, spec)}
    if not kept:
        return _dump({"sources": out})
    head = _dump({"sources": out}) if out else "sources:\n"
    body = "".join(f"  {line}\n" for line in _dump(kept).splitlines())
    return f"{head}  # declared in routes.yaml but not in the export: kept as declared\n{body}"


def not_in_export(columns: Mapping[str, tuple[str, ...]], spec: RoutesSpec | None) -> list[str]:
    """The sources ``spec`` declares that ``columns`` has no row for, sorted."""
    return sorted(set(spec.sources) - set(columns)) if spec is not None else []


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


class ColumnsFetchError(Exception):
    """No COLUMNS could be fetched live (no client: credentials, project; a failed query):
    the message is one line."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def fetch_columns(dataset: str) -> list[dict[str, Any]]:
    """``dataset``'s INFORMATION_SCHEMA.COLUMNS (``[project.]dataset``; needs the bigquery
    extra -- ImportError without it -- and credentials). A client that cannot be built or a
    query that fails is a :class:`ColumnsFetchError`."""
    bigquery = importlib.import_module("google.cloud.bigquery")
    project, _, ds = dataset.rpartition(".")
    try:
        client = bigquery.Client(project=project or None)
    except Exception as exc:  # no credentials, no project
        raise ColumnsFetchError(f"cannot create a BigQuery client: {_one_line(exc)}") from exc
    qualified = f"`{project}.{ds}`" if project else f"`{ds}`"
    sql = (
        "SELECT table_schema, table_name, column_name, ordinal_position "
        f"FROM {qualified}.INFORMATION_SCHEMA.COLUMNS"
    )
    try:
        return [dict(r.items()) for r in client.query(sql).result()]
    except Exception as exc:  # network, auth, missing dataset, quota
        raise ColumnsFetchError(
            f"BigQuery query on {dataset}.INFORMATION_SCHEMA.COLUMNS failed: {_one_line(exc)}"
        ) from exc
