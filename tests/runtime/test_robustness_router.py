"""Router robustness (daemon audit): poison messages are isolated and dead-lettered, a failed
commit never leaves a fired window to fire again, an unwritable store backs off and turns
not-ready, and the outbox/dead-letter housekeeping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from runtime_support import (
    MemorySink,
    RouterFactory,
    dry_run_keys,
    game_day_stream,
    key_of,
)

import scoperouter.runtime.router as router_mod
from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound

STREAM = [e for e in game_day_stream(60) if "affected_entities" in e]
POISON_ID = "poison-1"


def poison_event(player: str = "lalplayer01") -> dict[str, Any]:
    """A canonical event (made poisonous by the player id or by a patched normaliser)."""
    return {
        "event_id": POISON_ID,
        "source": "nba_raw.nbac_gamebook_player_stats",
        "game_date": "2025-11-19",
        "affected_entities": {"players": [player]},
        "changed_fields": ["minutes"],
    }


def _surrogate_ids(ev: Event) -> Event:
    return ev.model_copy(update={"affected_entities": {"players": ("s\udc00",)}})


async def _submit_batch(r: Any, events: list[dict[str, Any]]) -> list[Any]:
    # all submitted before the ingest worker runs: one batch, one transaction
    return list(
        await asyncio.gather(
            *(r.submit(Inbound("pubsub", obj=e, message_id=f"m-{e['event_id']}", dead_letter_on_reject=True))
              for e in events)
        )
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("surrogate_id", "invalid_field"), ("unserialisable_event", "unserialisable"), ("book_raises", "internal_error")],
)
async def test_poison_item_is_dead_lettered_and_the_batch_commits(
    zero_cfg: LoadedConfig, make_router: RouterFactory, monkeypatch: pytest.MonkeyPatch, fault: str,
    reason: str,
) -> None:
    """One item failing inside the batch is dead-lettered (acked); the rest commit and route."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    if fault == "unserialisable_event":
        real = router_mod.normalize_event

        def normalize(raw: object, registry: Any, *, message_id: str | None = None) -> Event:
            ev = real(raw, registry, message_id=message_id)
            return _surrogate_ids(ev) if ev.event_id == POISON_ID else ev

        monkeypatch.setattr(router_mod, "normalize_event", normalize)
    await r.start()
    if fault == "book_raises":
        real_add = r.book.add

        def add(ev: Event, d: Any, now: float) -> Any:
            if ev.event_id == POISON_ID:
                raise RuntimeError("injected window bug")
            return real_add(ev, d, now)

        monkeypatch.setattr(r.book, "add", add)
    good = STREAM[:20]
    poison = poison_event("s\udc00" if fault == "surrogate_id" else "lalplayer01")
    outs = await _submit_batch(r, [*good[:10], poison, *good[10:]])
    by_id = {o.event_id: o for o in outs}
    assert all(by_id[e["event_id"]].status == "accepted" for e in good)
    bad = by_id[POISON_ID]
    assert bad.status == "rejected" and bad.dead_lettered and bad.ack
    dls = [d for d in r.store.dead_letters() if d.kind == "event"]
    assert [d.ref for d in dls] == [f"m-{POISON_ID}"]
    assert dls[0].reason == reason
    assert await r.idle()
    assert sorted(key_of(t) for t in sink.received) == dry_run_keys(zero_cfg, good)
    assert r.store.is_seen(good[0]["event_id"]) and not r.store.is_seen(POISON_ID)

