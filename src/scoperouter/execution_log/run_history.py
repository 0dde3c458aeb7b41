"""The pipeline's own run history: what the date-level pipeline really ran, and how long.

Invariant: a run-history row becomes a :class:`HistoryRun` only when it is a *finished*
run (``success`` or ``partial``) with a duration, and it is attributed to a registry
processor only by its output table (``output_dataset.output_table`` = the processor's
``publishes``) or, failing that, by its class name (``PlayerGameSummaryProcessor`` ->
``player_game_summary``). A run counts once: a finished row whose ``run_id`` was already
mapped (the same row delivered again: a retried streaming insert, an export read twice) is
counted in ``duplicates``, not as a second run. Everything else is counted in
:class:`History` (``ignored``, ``unmapped``), never dropped silently.

The production table is BigQuery ``nba_reference.processor_run_history``
(najicham/nba-stats-scraper ``schemas/bigquery/nba_reference/processor_run_history.sql``:
``processor_name`` :13, ``run_id`` :14, ``status`` :21, ``duration_seconds`` :22,
``records_processed`` :28, ``data_date`` :101 (partition key, :178), ``started_at`` :102,
``processed_at`` :103, ``phase`` :109, ``output_table`` :110, ``output_dataset`` :111,
``trigger_source`` :117). It is written by ``RunHistoryMixin``
(``shared/processors/mixins/run_history_mixin.py``): ``processor_name`` is the class's
``processor_type`` or its class name (:315), ``output_table``/``output_dataset`` come from
``OUTPUT_TABLE``/``OUTPUT_DATASET`` (:318-319), ``duration_seconds`` is processed_at -
start (:272-273). A run first writes a ``running`` row (:159-161, no duration) and then a
second row with the final status (:245-247): only the final rows are runs here.

Read from an export (``--run-history FILE``: JSON lines or CSV with those column names) or
live from BigQuery (``--run-history-bigquery PROJECT.DATASET.TABLE``: one parameterised
query, ``data_date`` between ``@since`` and ``@until``, so only those partitions are read).
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from scoperouter.execution_log.bigquery import ExecutionLogError
from scoperouter.execution_log.bigquery_reader import QueryClient, QueryParam, validate_table_id
from scoperouter.json_lines import json_lines

FINISHED_STATUSES = frozenset({"success", "partial"})
"""Statuses whose ``duration_seconds`` is work the date-level pipeline did (``running`` rows
are the mixin's start markers; ``failed`` and ``skipped`` runs did not do the work)."""

COLUMNS = (
    "processor_name",
    "run_id",
    "status",
    "duration_seconds",
    "records_processed",
    "data_date",
    "output_table",
    "output_dataset",
    "phase",
    "trigger_source",
)


class RunHistoryError(ValueError):
    """The run history cannot be read (file missing, malformed row, failed query)."""


@dataclass(frozen=True)
class HistoryRun:
    """One finished date-level run of a registry processor."""

    processor: str
    data_date: date
    run_id: str
    duration_s: float
    records_processed: int


@dataclass
class History:
    """The mapped runs by (processor, date), and what could not be used (with counts)."""

    runs: dict[tuple[str, date], list[HistoryRun]] = field(default_factory=dict)
    rows: int = 0
    ignored: Counter[str] = field(default_factory=Counter)  # status -> rows not counted
    unmapped: Counter[str] = field(default_factory=Counter)  # processor_name -> rows
    duplicates: int = 0  # finished rows of a run_id already mapped (the first one counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "runs": sum(len(v) for v in self.runs.values()),
            "duplicate_rows": self.duplicates,
            "ignored_by_status": dict(sorted(self.ignored.items())),
            "unmapped_processors": dict(sorted(self.unmapped.items())),
        }


def class_to_name(class_name: str) -> str:
    """``PlayerGameSummaryProcessor`` -> ``player_game_summary``."""
    base = re.sub(r"Processor$", "", class_name)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()


def _table(row: Mapping[str, Any]) -> str | None:
    table = row.get("output_table") or ""
    dataset = row.get("output_dataset") or ""
    if not table:
        return None
    return table if "." in table or not dataset else f"{dataset}.{table}"


def _date(v: Any) -> date:
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def map_history(rows: Iterable[Mapping[str, Any]], publishes: Mapping[str, str | None]) -> History:
    """Rows of ``processor_run_history`` -> runs of registry processors (``publishes``:
    processor -> the table it writes)."""
    by_table = {t: p for p, t in publishes.items() if t}
    h = History()
    seen: set[str] = set()  # run ids mapped (a row without one is its own run)
    for i, row in enumerate(rows, 1):
        h.rows += 1
        status = str(row.get("status") or "")
        cls = str(row.get("processor_name") or "")
        table = _table(row)
        name = by_table.get(table) if table else None
        if name is None and class_to_name(cls) in publishes:
            name = class_to_name(cls)
        if status not in FINISHED_STATUSES or row.get("duration_seconds") in (None, ""):
            h.ignored[status or "(none)"] += 1
            continue
        if name is None:
            h.unmapped[cls or str(table)] += 1
            continue
        try:
            run = HistoryRun(
                processor=name,
                data_date=_date(row["data_date"]),
                run_id=str(row.get("run_id") or f"row-{i}"),
                duration_s=float(row["duration_seconds"]),
                records_processed=int(float(row.get("records_processed") or 0)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RunHistoryError(f"run history row {i}: {exc}") from exc
        if row.get("run_id"):
            if run.run_id in seen:
                h.duplicates += 1
                continue
            seen.add(run.run_id)
        h.runs.setdefault((name, run.data_date), []).append(run)
    return h


def read_file(path: Path) -> list[dict[str, Any]]:
    """An export of the table: JSON lines (``bq query --format=json`` rows one per line, or
    a JSON array) or CSV with a header. A JSON row that is not an object is a
    :class:`RunHistoryError` naming the file and the row."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunHistoryError(f"cannot read run history {path}: {exc.strerror}") from exc
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            data = json.loads(text)
            for i, r in enumerate(data, 1):
                if not isinstance(r, dict):
                    raise RunHistoryError(
                        f"{path}: run history row {i} is not a JSON object: {_brief(r)}"
                    )
            return list(data)
        if stripped.startswith("{"):
            rows = []
            try:
                lines = list(json_lines(text, str(path)))
            except ValueError as exc:
                raise RunHistoryError(str(exc)) from None
            for n, r in lines:
                if not isinstance(r, dict):
                    raise RunHistoryError(
                        f"{path}:{n}: run history row is not a JSON object: {_brief(r)}"
                    )
                rows.append(r)
            return rows
    except json.JSONDecodeError as exc:
        raise RunHistoryError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    return [dict(r) for r in csv.DictReader(text.splitlines())]


def _brief(value: Any) -> str:
    """A JSON value in an error message, at most 60 characters."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def select_sql(table: str) -> str:
    """The query over ``processor_run_history`` (the table id is validated first)."""
    validate_table_id(table)
    return (
        f"SELECT {', '.join(COLUMNS)} FROM `{table}` "
        "WHERE data_date BETWEEN @since AND @until AND status IN ('success', 'partial')"
    )


def read_bigquery(
    client: QueryClient, table: str, since: date, until: date
) -> list[dict[str, Any]]:
    """The finished runs with ``data_date`` in [since, until], one parameterised query."""
    sql = select_sql(table)
    params: Sequence[QueryParam] = (
        QueryParam("since", "DATE", since),
        QueryParam("until", "DATE", until),
    )
    try:
        return [{c: r[c] for c in COLUMNS} for r in client.run_query(sql, params)]
    except ExecutionLogError:
        raise
    except Exception as exc:  # network, permissions, missing table
        raise RunHistoryError(f"query of {table} failed: {str(exc).splitlines()[0][:300]}") from exc
