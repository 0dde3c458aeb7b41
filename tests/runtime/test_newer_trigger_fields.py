"""A trigger row written by a newer scoperouter (a field this version's Trigger lacks:
another revision during a rolling deploy) is sent with its body as stored, counted in
``scoperouter_trigger_fields_ignored_total`` and said once -- not dead-lettered as
unreadable; a body with another fault still is."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from runtime_support import stop_routers

from scoperouter.messages.models import Trigger
from scoperouter.messages.stored import read_stored
from scoperouter.processor_registry.loader import load_config_text
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.router import RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.model import Admission, Contribution, IngestBatch, Released

ROUTES = """
version: 1
entities: {player: {}}
defaults: {max_entities: 100, window: {quiet: 1s, max_wait: 2s}, target: {outbox: {}}}
processors:
  p: {phase: 3, granularity: player, inputs: [{source: raw.a}]}
"""
BODY = {
    "trigger_id": "t1",
    "processor": "p",
    "game_date": "2025-11-19",
    "start_date": "2025-11-19",
    "end_date": "2025-11-19",
    "scope": "date",
    "reason": "date_scope",
}


@pytest.mark.parametrize(
    ("extra", "ignored"),
    [
        ({}, ()),
        ({"not_before": "2025-11-20"}, ("not_before",)),
        ({"b_new": 1, "a_new": [1]}, ("a_new", "b_new")),
        ({"new": 1, "scope": "nope"}, None),  # another fault: unreadable
        ({"game_date": "not a date"}, None),
    ],
)
def test_read_stored(extra: dict[str, Any], ignored: tuple[str, ...] | None) -> None:
    """Unknown top-level fields alone are left out and named; any other fault raises."""
    body = json.dumps({**BODY, **extra}).encode()
    if ignored is None:
        with pytest.raises(ValueError):
            read_stored(body)
        return
    trig, names = read_stored(body)
    assert names == ignored and trig == Trigger.model_validate(BODY)


class BodySink:
    """Records the bodies it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes | None] = []

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.bodies.append(body)

    async def close(self) -> None:
        return None


async def test_newer_row_is_sent_as_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pending row with an unknown field is delivered with its body unchanged."""
    cfg = load_config_text(ROUTES)
    db = tmp_path / "state.db"
    st = open_state_store(str(db), StoreOptions(owner="newer"))
    c = Contribution("p", Trigger.model_validate(BODY).game_date, "e1", None, False, None,
                     None, "no_entities_in_event", 1.0, 2.0, 100, "player")  # fmt: skip
    st.ingest(IngestBatch(admissions=(Admission("e1", (c,)),)), 1_763_000_000.0)
    [item] = st.fire_due(1_763_000_010.0)
    st.apply_marks([Released(item.item_id)])
    st.close()
    newer = json.dumps({**json.loads(item.body), "not_before": "2025-11-20"}).encode()
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE sr_outbox SET body = ? WHERE id = ?", (newer, item.item_id))
    caplog.set_level(logging.WARNING, logger="scoperouter")
    sink, m = BodySink(), Metrics()
    st = open_state_store(str(db), StoreOptions(owner="older"))
    r = SharedRouter(cfg.registry, cfg.relations, st, {"p": sink}, metrics=m,
                     options=RouterOptions(), poll_interval_s=0.05)  # fmt: skip
    await r.start()
    try:
        for _ in range(200):
            if sink.bodies:
                break
            await asyncio.sleep(0.02)
        assert sink.bodies == [newer]
        assert m.trigger_fields_ignored._value.get() == 1
        assert m.dead_lettered.labels("trigger", "unreadable")._value.get() == 0
        assert any("not_before" in x.getMessage() for x in caplog.records)
    finally:
        await stop_routers([r])
