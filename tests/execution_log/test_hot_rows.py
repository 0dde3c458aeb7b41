"""The hot path's shortcuts build the rows the plain definitions do: skip decisions read
through the identity memo (cold, warm, full, or not shared), and the fold's column-by-column
comparison of a decision row with its outcome (any shared column differing: no fold)."""

from __future__ import annotations

from typing import Any

import pytest
from logsupport import DAY, T0

from scoperouter.execution_log import memos
from scoperouter.execution_log.base import PendingOutcome
from scoperouter.execution_log.row_values import ids_json as _ids_json
from scoperouter.execution_log.row_values import iso, iso_epoch
from scoperouter.execution_log.rows import (
    DECISION_COLUMNS,
    LOG_COLUMNS,
    decision_rows,
    dispatch_row,
)
from scoperouter.execution_log.sqlite_fold import _SHARED, fold
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations
from scoperouter.router.decisions import Decision
from scoperouter.router.planner import plan


def _event(i: int) -> Event:
    return Event.model_validate(
        {"event_id": f"e{i}", "source": "nba_raw.nbac_injury_report", "game_date": DAY,
         "affected_entities": {"players": [f"t0{i}p03"]}, "changed_fields": ["injury_status"]}
    )  # fmt: skip


def _rows(registry: CompiledRegistry, rel: InMemoryRelations, ev: Event, ds: Any) -> Any:
    reasons: list[str] = []
    skips: dict[str, int] = {}
    out = decision_rows(ev, ds, T0, registry=registry, relations=rel, ids=_ids_json,
                        skip_reasons=reasons, skips=skips, narrow=True)  # fmt: skip
    return out, reasons, skips


def _fresh(d: Decision) -> Decision:
    return Decision.model_validate(d.model_dump())  # equal, not the planner's object


@pytest.mark.parametrize("case", ["cold", "warm", "full", "fresh"])
def test_skips_read_through_the_memo_give_the_plain_rows(
    registry: CompiledRegistry, relations: InMemoryRelations, case: str
) -> None:
    """Rows, skip reasons and counts are the same with the memo cold, warm, full (cleared) and for skips the planner does not share."""
    ev = _event(1)
    ds = plan(registry, relations, ev, DAY)
    assert any(d.action == "skip" for d in ds)
    memos.skip_reasons.clear()
    want = _rows(registry, relations, ev, ds)
    if case == "warm":
        _rows(registry, relations, ev, ds)
    elif case == "full":
        memos.skip_reasons.clear()
        for i in range(memos.MEMO_SIZE):
            memos.skip_reasons[-1 - i] = (ds[0], "x")  # ids no object has
    elif case == "fresh":
        ds = tuple(_fresh(d) if d.action == "skip" else d for d in ds)
    assert _rows(registry, relations, ev, ds) == want
    assert len(memos.skip_reasons) <= memos.MEMO_SIZE
    assert -1 not in memos.skip_reasons  # a full memo is cleared before it grows


def _outcome() -> tuple[PendingOutcome, tuple[Any, ...]]:
    """An outcome and the linked decision row it folds into (shared columns as its row's)."""
    t = Trigger(trigger_id="t-1", processor="p", game_date=DAY, start_date=DAY, end_date=DAY,
                scope="entities", entity_type="player", entity_ids=("a",), reason="entity_scope",
                caused_by=("e1",), fired_at=T0, correlation_id="c", priority="critical")  # fmt: skip
    o = PendingOutcome(t, "ok", 1, 2.0, T0.timestamp() + 1, None, 3, "player", 40, DAY.isoformat())
    x = dict(zip(LOG_COLUMNS, o.row(_ids_json), strict=True))
    assert x == dict(zip(LOG_COLUMNS, dispatch_row(t, status="ok", attempts=1, latency_ms=2.0, dispatched_at=T0.timestamp() + 1, error=None, phase=3, granularity="player", universe=40, ids=_ids_json, game_date_iso=DAY.isoformat()), strict=True))  # fmt: skip
    x.update(decision_id="d-1", action="run", kind="decision", entities_mapped=1)
    return o, tuple(x[c] for c in DECISION_COLUMNS)


@pytest.mark.parametrize("column", [None, *_SHARED])
def test_an_outcome_folds_only_when_every_shared_column_agrees(column: str | None) -> None:
    """The decision row agreeing with the outcome's row folds it (its dispatch values appended); any one shared column differing keeps the dispatch row."""
    o, r = _outcome()
    if column is not None:
        i = DECISION_COLUMNS.index(column)
        r = (*r[:i], "other" if not isinstance(r[i], int) else r[i] + 1, *r[i + 1 :])
    out, left = fold([r], [o], _ids_json)
    if column is None:
        assert left == [] and out == [(*r, iso_epoch(T0.timestamp() + 1), "ok", 1, 2.0, None, iso(T0))]  # fmt: skip
    else:
        assert out == [r] and left == [o.row(_ids_json)]
