"""A poison item of an ingest batch (its savepoint rolled back) leaves the engine as the
transaction wrote it: a window its step-1 tick fired (then rolled back) fires with a later
item of the batch, so an acked event's window is delivered, once, also across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from runtime_support import MemorySink, RouterFactory, load, write_registry

from scoperouter.messages.models import Event
from scoperouter.runtime.router import Inbound

POISON_ID = "poison-1"


def injury(event_id: str, player: str, **extra: Any) -> dict[str, Any]:
    """An injury update (player_game_summary alone) of ``player``."""
    return {
        "event_id": event_id,
        "source": "nba_raw.nbac_injury_report",
        "game_date": "2025-11-19",
        "affected_entities": {"players": [player]},
        "changed_fields": ["injury_reason"],
        **extra,
    }


SCORE = {  # team processors only (zero-length windows in the "zero_window_other" case)
    "event_id": "B",
    "source": "nba_raw.nbac_scoreboard_v2",
    "game_date": "2025-11-19",
    "affected_entities": {"games": ["0022500001"]},
    "changed_fields": ["score"],
}


def registry(tmp_path: Path, case: str) -> Any:
    path = write_registry(
        tmp_path / "cfg",
        quiet="30s",
        max_wait="2m",
        defaults={"run_retries": 1} if case == "closed_loop" else None,
    )
    if case == "zero_window_other":
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec["processors"]["team_offense_game_summary"]["window"] = {
            "quiet": "0s",
            "max_wait": "0s",
        }
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load(path)


@pytest.mark.parametrize(
    ("case", "later"),
    [
        ("critical_same_processor", injury("B", "lalplayer03", priority="critical")),
        ("closed_loop", injury("B", "lalplayer03", priority="critical")),
        ("zero_window_other", SCORE),
    ],
)
async def test_window_due_when_an_item_fails_fires_with_the_rest_of_the_batch(
    tmp_path: Path,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    later: dict[str, Any],
) -> None:
    """An accepted event's due window is delivered once although a poison item's tick fired it."""
    cfg = registry(tmp_path, case)
    now = [5_000_000.0]
    sink = MemorySink()
    r = make_router(cfg, sink, clock=lambda: now[0])
    await r.start()
    assert bool(r.windows.loop_on) == (case == "closed_loop")
    next(t for t in r._background if t.get_name() == "windows").cancel()  # fired by hand
    assert (await r.submit(Inbound("test", obj=injury("A", "lalplayer01")))).status == "accepted"
    now[0] += 60.0  # A's window (quiet 30s) is due; the timer has not fired it
    real = r.book.add_states  # the engine's one way into the book

    def add(ev: Event, d: Any, t: float) -> Any:
        if ev.event_id == POISON_ID:
            raise RuntimeError("injected window bug")  # after the item's step-1 tick
        return real(ev, d, t)

    monkeypatch.setattr(r.book, "add_states", add)
    outs = await asyncio.gather(  # one batch: the poison item, then the later event
        r.submit(
            Inbound(
                "pubsub",
                obj=injury(POISON_ID, "lalplayer02"),
                message_id="m-p",
                dead_letter_on_reject=True,
            )
        ),
        r.submit(Inbound("pubsub", obj=later, message_id="m-b")),
    )
    assert [(o.event_id, o.status) for o in outs] == [(POISON_ID, "rejected"), ("B", "accepted")]
    monkeypatch.setattr(r.book, "add_states", real)
    now[0] += 200.0  # every window left open is due
    await r.fire_due()
    assert await r.idle()
    await r._flush_marks()
    await r.stop()
    now[0] += 3600.0
    r2 = make_router(cfg, sink, clock=lambda: now[0])
    await r2.start()
    await r2.fire_due()
    assert await r2.idle()
    await r2.stop()
    caused = [t.caused_by for t in sink.received]
    assert sum("A" in c for c in caused) == 1, caused
    assert all(POISON_ID not in c for c in caused), caused
