"""Reads from BigQuery's ``INFORMATION_SCHEMA.JOBS``: an export file (JSON array, JSON lines
or CSV) or rows fetched live (:func:`fetch_jobs`, a thin adapter over google-cloud-bigquery).

Invariant: a job is attributed to a processor by its label (``--label``, default
``processor``; a class name such as ``PlayerGameSummaryProcessor`` names
``player_game_summary``), else by its ``destination_table`` being a processor's
``publishes``; a job attributed to none is counted, never guessed. Jobs give tables, not
columns (``Reads.columns_known`` is False), so this route finds ``missing_input`` and
``unused_input`` only.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scoperouter.json_lines import json_lines
from scoperouter.lineage.reads import Origin, Reads
from scoperouter.processor_registry.compiled import CompiledRegistry

Row = Mapping[str, Any]
#: the JOBS columns lineage reads: a row with none of them is no job
JOB_KEYS = frozenset({"job_id", "labels", "referenced_tables", "destination_table"})


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _row(value: Any, where: str) -> dict[str, Any]:
    """``value`` as a job row, else a ValueError naming ``where``: an object whose
    ``labels`` / ``referenced_tables`` (JSON text in a CSV) are absent or lists."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: a row must be a JSON object, not {_kind(value)}")
    for key, ok in (("labels", (list, dict)), ("referenced_tables", (list,))):
        got = _decode(value.get(key))
        if got is not None and got != "" and not isinstance(got, ok):
            raise ValueError(f"{where}: {key} must be a list, not {_kind(got)}")
    return value


def load_export(path: Path) -> list[dict[str, Any]]:
    """Rows of a JOBS export: ``.csv`` (nested columns as JSON text), else a JSON array or
    JSON lines. A file that is one JSON object of none of :data:`JOB_KEYS` (rows wrapped in
    ``{"rows": [...]}``), bad JSON or a row that is not a job (:func:`_row`) is a
    ValueError naming the file and the line or row."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is no content
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [
            _row({k: _decode(v) for k, v in row.items()}, f"{path}:{reader.line_num}")
            for row in reader
        ]
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        return [_row(r, f"{path}: row {i} of the array") for i, r in enumerate(data, 1)]
    if stripped.startswith("{"):
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None  # JSON lines (or bad JSON: reported by line below)
        if isinstance(whole, dict) and not JOB_KEYS & whole.keys():
            raise ValueError(
                f"{path}: one JSON object, not job rows (its keys: {', '.join(list(whole)[:5])}): "
                "give a JSON array or JSON lines of INFORMATION_SCHEMA.JOBS rows"
            )
    return [_row(row, f"{path}:{n}") for n, row in json_lines(text, str(path))]


def _ref(t: Any) -> str | None:
    if isinstance(t, Mapping):
        ds, tb = t.get("dataset_id") or t.get("datasetId"), t.get("table_id") or t.get("tableId")
        return f"{ds}.{tb}" if ds and tb else None
    if isinstance(t, str) and t:
        parts = t.replace(":", ".").split(".")
        return ".".join(parts[-2:]) if len(parts) >= 2 else None
    return None


def _labels(row: Row) -> dict[str, str]:
    raw = row.get("labels") or {}
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    return {str(x.get("key")): str(x.get("value")) for x in raw if isinstance(x, Mapping)}


def snake(name: str) -> str:
    """``PlayerGameSummaryProcessor`` -> ``player_game_summary``."""
    base = re.sub(r"Processor$", "", name)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower().replace("-", "_")


def attribute(row: Row, registry: CompiledRegistry, label: str) -> str | None:
    by_output = {p.publishes: n for n, p in registry.processors.items() if p.publishes}
    value = _labels(row).get(label)
    if value is not None:
        for cand in (value, snake(value), value.replace("-", "_")):
            if cand in registry.processors:
                return cand
    dest = _ref(_decode(row.get("destination_table")))
    return by_output.get(dest) if dest else None


def jobs_reads(
    rows: Iterable[Row], registry: CompiledRegistry, source: str, label: str = "processor"
) -> tuple[dict[str, Reads], int]:
    """Per processor, the tables its jobs referenced; and how many jobs matched none."""
    out: dict[str, Reads] = {}
    unattributed = 0
    for n, row in enumerate(rows, start=1):
        proc = attribute(row, registry, label)
        if proc is None:
            unattributed += 1
            continue
        reads = out.setdefault(proc, Reads(columns_known=False))
        where = Origin(source, n)
        for t in _decode(row.get("referenced_tables")) or ():
            name = _ref(t)
            if name:
                reads.add_table(name, where)
        dest = _ref(_decode(row.get("destination_table")))
        if dest:
            reads.writes.add(dest)
    return out, unattributed


class JobsFetchError(Exception):
    """No JOBS could be fetched live (no client: credentials, project; a failed query): the
    message is one line."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def fetch_jobs(project: str, region: str, days: int) -> list[dict[str, Any]]:
    """The last ``days`` of query and load jobs (the job types of the export query in
    docs/lineage.md: a load job writes a staging table too) from
    ``region-REGION.INFORMATION_SCHEMA.JOBS`` (needs the bigquery extra -- ImportError
    without it -- and credentials). A client that cannot be built or a query that fails is
    a :class:`JobsFetchError`."""
    bigquery = importlib.import_module("google.cloud.bigquery")
    try:
        client = bigquery.Client(project=project)
    except Exception as exc:  # no credentials, no project
        raise JobsFetchError(f"cannot create a BigQuery client: {_one_line(exc)}") from exc
    sql = (
        "SELECT job_id, referenced_tables, destination_table, labels "
        f"FROM `region-{region}`.INFORMATION_SCHEMA.JOBS "
        "WHERE job_type IN ('QUERY', 'LOAD') AND state = 'DONE' "
        "AND creation_time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days DAY)"
    )
    cfg = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("days", "INT64", days)]
    )
    try:
        return [dict(r.items()) for r in client.query(sql, job_config=cfg).result()]
    except Exception as exc:  # network, auth, unknown region, quota
        raise JobsFetchError(
            f"BigQuery query on region-{region}.INFORMATION_SCHEMA.JOBS of {project} failed: "
            f"{_one_line(exc)}"
        ) from exc
