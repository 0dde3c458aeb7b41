"""A run's bare report (the SDK's ``CompletionPublisher.report``: no source, names its
trigger) while the closed loop is off -- ``serve``'s default, and always with ``--state`` --
is accepted, counted in ``scoperouter_reports_unread_total`` and routes nothing. It was
dead-lettered ``missing_source`` (a dead letter, a dead-letter-topic message and a WARNING
per unchanged run of the example service, which reports every run: third review,
reproduced)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, load, stop_routers, write_registry

from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.sdk import CompletionPublisher, parse_trigger
from scoperouter.state import StoreOptions, open_state_store


class _Client:
    """A Pub/Sub publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attrs: str) -> Any:
        self.sent.append((data, attrs))

        class Done:
            def result(self, timeout: float | None = None) -> str:
                return "m-1"

        return Done()


def _report() -> tuple[bytes, dict[str, str]]:
    client = _Client()
    pub = CompletionPublisher(
        "projects/p/topics/t", source="nba_analytics.player_game_summary", client=client
    )
    scope = parse_trigger(
        {"trigger_id": "t-1", "processor": "player_game_summary", "game_date": str(GAME_DAY)}
    )
    pub.report(scope, "success", record_count=12)
    return client.sent[0]


@pytest.mark.parametrize("kind", ["router", "shared-sqlite"])
async def test_a_report_with_the_loop_off_is_accepted_not_dead_lettered(
    tmp_path: Path, make_router: RouterFactory, kind: str
) -> None:
    """Pushed (dead-letter on reject), the report is accepted with reason closed_loop_off."""
    cfg = load(write_registry(tmp_path / "cfg"))  # no closed-loop key: the loop is off
    made: list[SharedRouter] = []
    if kind == "router":
        r: Any = make_router(cfg, MemorySink())
    else:
        st = open_state_store(
            f"sqlite:///{tmp_path / 'state.db'}",
            StoreOptions(owner="a", date_field=cfg.registry.date_field),
            sync="normal",
        )
        sinks = {p: MemorySink() for p in cfg.registry.processors}
        r = SharedRouter(
            cfg.registry, cfg.relations, st, sinks, options=RouterOptions(as_of=GAME_DAY)
        )
        made.append(r)
    await r.start()
    data, attrs = _report()
    out = await r.submit(
        Inbound(
            "push",
            data=data,
            message_id="m-9",
            dead_letter_on_reject=True,
            trigger_id=attrs.get("trigger_id"),
        )
    )
    unread = r.metrics.reports_unread._value.get()
    await r.stop(timeout=2.0)
    await stop_routers(made)
    assert (out.status, out.reason, out.dead_lettered) == ("accepted", "closed_loop_off", False)
    assert unread == 1


# production's auto-retry request (orchestration/cloud_functions/auto_retry_processor:
# tests/messages/production_corpus.py, trig_auto_retry_fallback): a request to run
AUTO_RETRY = {
    "action": "retry",
    "processor_name": "PlayerDailyCacheProcessor",
    "game_date": str(GAME_DAY),
    "correlation_id": "retry-20260115234107",
    "retry_count": 1,
    "trigger_source": "auto_retry",
}


@pytest.mark.parametrize("loop", [False, True], ids=["loop-off", "loop-on"])
async def test_a_trigger_message_is_no_report(
    tmp_path: Path, make_router: RouterFactory, loop: bool
) -> None:
    """A request to run that names a processor and a date (no source) is rejected
    not_a_completion with the loop off or on; with the loop on it closed the processor's
    open trigger of that date as a success."""
    defaults = {"run_retries": 1, "completion_timeout": "10m"} if loop else None
    cfg = load(write_registry(tmp_path / "cfg", defaults=defaults))
    r = make_router(cfg, MemorySink())
    await r.start()
    injury = {
        "event_id": "e-1",
        "source": "nba_raw.nbac_injury_report",
        "game_date": str(GAME_DAY),
        "affected_entities": {"players": ["lalplayer01"]},
    }
    await r.submit(Inbound("test", data=json.dumps(injury).encode()))
    assert await r.idle()
    out = await r.submit(Inbound("test", data=json.dumps(AUTO_RETRY).encode()))
    assert await r.idle()
    phases = [e.phase for e in r.windows.engine.loop.ledger.entries()] if loop else []
    await r.stop(timeout=2.0)
    assert (out.status, out.reason) == ("rejected", "not_a_completion")
    assert "succeeded" not in phases
