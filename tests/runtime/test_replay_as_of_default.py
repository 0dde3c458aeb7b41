"""``replay`` without ``--as-of`` routes each event as of its own virtual date (the date of the
replay's clock when the event is routed), as ``serve`` without ``--as-of`` routes it as of
the date of its clock: a replay of past events does not reach lookback dates that were
still in the future when they happened (SPEC section 2, lookback: "never later than the
router's as-of date"; section 4: replay runs on a virtual clock)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, RouterFactory, as_lines, load, write_registry

from scoperouter.cli import main
from scoperouter.messages.models import Trigger
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.runtime.outcomes import Inbound

D = GAME_DAY - timedelta(days=3)  # a past game day, in the relation data


def _injury(event_id: str, produced: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "source": "nba_raw.nbac_injury_report",
        "game_date": D.isoformat(),
        "affected_entities": {"players": ["lalplayer01"]},
        "changed_fields": ["injury_status"],
        "produced_at": produced,
    }


STREAM = [
    _injury("e-1", f"{D}T18:00:00Z"),  # on its game day: lookbacks reach no later date
    _injury("e-2", f"{D + timedelta(days=2)}T09:00:00Z"),  # two days on: they reach two
]


def _key(t: Trigger | dict[str, Any]) -> tuple[str, str, str]:
    d = t.wire() if isinstance(t, Trigger) else t
    return (d["processor"], d["game_date"], d["fired_at"])


async def _serve(cfg: Any, make_router: RouterFactory) -> list[tuple[str, str, str]]:
    """The stream through the daemon, on a virtual clock, with no as-of (serve's default)."""
    now = [0.0]
    r = make_router(cfg, clock=lambda: now[0], as_of=None)
    await r.start()
    for raw in STREAM:
        ev = parse_event_bytes(json.dumps(raw).encode(), cfg.registry)
        assert ev.produced_at is not None
        now[0] = ev.produced_at.timestamp()
        assert (await r.submit(Inbound("test", obj=raw))).ack
    assert await r.idle()
    rows = r.store._db.execute("SELECT body FROM triggers ORDER BY id").fetchall()
    return sorted(_key(Trigger.model_validate_json(b)) for (b,) in rows)


async def test_replay_without_as_of_routes_each_event_as_of_its_own_date(
    tmp_path: Path, make_router: RouterFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay with no --as-of gives serve's triggers on the same clock: no lookback date after the event's own date."""
    path = write_registry(tmp_path)  # zero-length windows: every decision fires at once
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in as_lines(STREAM)))
    assert main(["replay", str(events), "--config", str(path), "--dry-run", "--json"]) == 0
    replayed = sorted(_key(json.loads(line)) for line in capsys.readouterr().out.splitlines())
    assert replayed == await _serve(load(path), make_router)
    latest = {t[1] for t in replayed}
    assert max(latest) == (D + timedelta(days=2)).isoformat()  # e-2's lookbacks, capped
