"""The execution log's cheaper hot path writes what the plain one did: dispatch times
formatted from epoch seconds, skips JSON memoised by reason, NULLs bound through the
registered adapter, decision rows stored without their dispatch columns (issue 16)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from logsupport import DAY, T0

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.row_values import ids_json as _ids_json
from scoperouter.execution_log.row_values import iso, iso_epoch, skips_json, skips_text
from scoperouter.execution_log.rows import LOG_COLUMNS, decision_rows, skip_counts
from scoperouter.execution_log.sqlite import DECISION_COLUMNS
from scoperouter.execution_log.sqlite_links import Pending, row_trigger
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import plan


@pytest.mark.parametrize(
    "t",
    [
        0.0,
        1.0,
        1_763_564_400.0,  # a whole second
        1_763_564_400.123456,
        1_763_564_400.9999996,  # rounds up into the next second
        1_763_564_400.0000004,  # rounds down to .000000
        1_763_564_400.0000005,  # half: to even
        1_763_564_459.999999,
        4_102_444_799.5,  # 2099-12-31T23:59:59.5
        -1.25,  # before the epoch: the datetime path
    ],
)
def test_iso_epoch_is_iso_of_the_datetime(t: float) -> None:
    """Epoch seconds format exactly as ``iso(datetime.fromtimestamp(t, UTC))``."""
    assert iso_epoch(t) == iso(datetime.fromtimestamp(t, UTC))
    assert iso_epoch(t) == datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


@pytest.mark.parametrize(
    "times",
    [
        [T0, T0, T0],
        [T0, datetime(2025, 11, 19, 16, 0, tzinfo=UTC), T0],
        [T0, T0.replace(tzinfo=None), T0],  # naive: taken as UTC, not the memo's
        [datetime(2025, 11, 19, 16, 0, 0, 5, tzinfo=UTC), T0, T0.replace(microsecond=7)],
    ],
)
def test_iso_memo_gives_each_time_its_own_text(times: list[datetime]) -> None:
    """The memoised last time never answers for another time."""
    assert [iso(t) for t in times] == [
        (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat(timespec="microseconds") for t in times
    ]


def _d(action: str, reason: str, processor: str = "p") -> Decision:
    return Decision(
        processor=processor,
        action=action,  # type: ignore[arg-type]
        scope="date" if action == "run" else None,
        entity_type=None,
        entity_ids=None,
        dates=(),
        reason=reason,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "decisions",
    [
        [],
        [_d("run", "date_granularity")],
        [_d("skip", "not_an_input")] * 3 + [_d("run", "entity_scope")],
        [_d("skip", "not_an_input"), _d("skip", "irrelevant_fields"), _d("skip", "not_an_input")],
        [_d("skip", "irrelevant_fields"), _d("skip", "not_an_input"), _d("skip", "not_an_input")],
        [_d("skip", "unknown_source")],
    ],
)
def test_skips_text_is_the_json_of_the_skip_counts(
    decisions: list[Decision], registry: CompiledRegistry
) -> None:
    """The memoised skips JSON equals encoding the counts (None without skips), twice over, also from the reasons decision_rows collects."""
    counts = skip_counts(decisions)
    want = skips_json(counts) if counts else None
    assert skips_text(decisions) == want
    assert skips_text(decisions) == want  # from the memo
    reasons: list[str] = []
    decision_rows(
        Event.model_validate({"event_id": "e", "source": "s", "game_date": DAY}),
        decisions,
        T0,
        registry=registry,
        relations=None,
        skip_reasons=reasons,
    )
    assert reasons == [d.reason for d in decisions if d.action == "skip"]
    assert skips_text(decisions, reasons) == want


@pytest.mark.parametrize("value", [None, "x", "", 0, 7, 2.5, b"\x00"])
def test_values_bind_as_before_with_the_none_adapter(value: Any) -> None:
    """With the log's NULL adapter registered, every value (None too) stores as it did."""
    assert DECISION_COLUMNS  # the module is imported: its adapter is registered
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (v)")
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        (got,) = conn.execute("SELECT v FROM t").fetchone()
        (kind,) = conn.execute("SELECT typeof(v) FROM t").fetchone()
    finally:
        conn.close()
    assert got == value
    assert kind == {type(None): "null", str: "text", int: "integer", float: "real"}.get(
        type(value), "blob"
    )


_ROW = dict.fromkeys(LOG_COLUMNS)
_RUN = {**_ROW, "event_id": "e1", "processor": "p", "game_date": "2025-11-19", "kind": "decision", "action": "run"}  # fmt: skip
_PENDING: Pending = {
    "e1": [("t-q", "q", "2025-11-19", "2025-11-19"), ("t-a", "p", "2025-11-18", "2025-11-19"),
           ("t-b", "p", "2025-11-19", "2025-11-19")],
}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "want"),
    [
        (_RUN, "t-a"),  # the first link of its processor and date wins
        ({**_RUN, "game_date": "2025-11-17"}, None),  # outside every link's dates
        ({**_RUN, "processor": "q"}, "t-q"),
        ({**_RUN, "processor": "r"}, None),
        ({**_RUN, "event_id": "e2"}, None),  # no pending link
        ({**_RUN, "trigger_id": "t-old"}, None),  # already linked
        ({**_RUN, "action": "skip"}, None),  # only run decisions
        ({**_RUN, "kind": "dispatch"}, None),
        ({**_RUN, "game_date": None}, None),
    ],
)
def test_row_trigger_is_the_first_matching_link(row: dict[str, Any], want: str | None) -> None:
    """A buffered decision row takes the trigger of the first link naming its event, processor and date."""
    assert row_trigger(tuple(row[c] for c in LOG_COLUMNS), _PENDING) == want


def _stored(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT * FROM pipeline_execution_log WHERE kind = 'decision' ORDER BY rowid"
        )
        return [{c: r[c] for c in LOG_COLUMNS} for r in rows]
    finally:
        conn.close()


@pytest.mark.parametrize("flush_between", [False, True])
def test_decision_rows_are_stored_whole(
    tmp_path: Path,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
    flush_between: bool,
) -> None:
    """Decision rows inserted without their dispatch columns read back as the full rows built, NULLs included."""
    events = [
        Event.model_validate(
            {"event_id": f"e{i}", "source": "nba_raw.nbac_gamebook_player_stats",
             "game_date": DAY.isoformat(), "affected_entities": {"players": [f"t0{i}p01"]},
             "changed_fields": ["minutes"]}
        )
        for i in range(3)
    ]  # fmt: skip
    as_of: date = DAY
    planned = [(ev, plan(registry, relations, ev, as_of)) for ev in events]
    path = tmp_path / "log.sqlite"
    with SqliteExecutionLog(path) as log:
        for ev, ds in planned:
            log.record_decisions(ev, ds, T0, registry=registry, relations=relations, as_of=as_of)
            if flush_between:
                log.flush()
    want = [
        dict(zip(LOG_COLUMNS, r, strict=True))
        for ev, ds in planned
        for r in decision_rows(
            ev, ds, T0, registry=registry, relations=relations, ids=SqliteExecutionLog._ids
        )
    ]
    assert want and _stored(path) == want


@pytest.mark.parametrize(
    "ids",
    [(), ("a",), ("a", "b"), ("é",), ('q"uote\\n',), ("x", "é", "y"), (1,), (1, "a"), [7]],
)
def test_id_lists_encode_as_compact_json(ids: Any) -> None:
    """The SQLite log's id lists (one id or several, non-ASCII, not strings) are ``json.dumps`` compact."""
    assert _ids_json(ids) == json.dumps(list(ids), separators=(",", ":"))
