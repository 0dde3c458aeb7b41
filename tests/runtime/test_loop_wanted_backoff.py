"""``retry_backoff`` is a closed-loop setting like ``run_retries``, ``completion_timeout`` and
``barrier``: a registry that sets it anywhere gets the loop in ``serve`` (docs/ledger.md, "In
the daemon"), and its re-dispatches wait that backoff. A setting counts when it is written,
whatever its value: ``run_retries: 0`` turns the loop on with no re-dispatch after a failure
(completions tracked, a failed run a dead letter at once: docs/registry.md ``defaults``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, INJURY_EVENT, MemorySink, RouterFactory, load, write_registry

from scoperouter.runtime.loop_runtime import loop_wanted
from scoperouter.runtime.router import Inbound

PGS = "player_game_summary"


def _config(tmp_path: Path, defaults: dict[str, Any], processor: dict[str, Any]) -> Any:
    """The test registry with ``defaults`` and, on player_game_summary, ``processor``."""
    cfg = load(write_registry(tmp_path, defaults=defaults))
    if not processor:
        return cfg
    import yaml

    path = tmp_path / "routes.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["processors"][PGS].update(processor)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load(path)


def _registry(tmp_path: Path, defaults: dict[str, Any], processor: dict[str, Any]) -> Any:
    return _config(tmp_path, defaults, processor).registry


async def _first_pgs_run(
    cfg: Any, make_router: RouterFactory, now: list[float], report: dict[str, Any]
) -> tuple[Any, MemorySink, Any]:
    """Start a router on ``cfg``, route the injury event, then send ``report`` (with the
    first player_game_summary trigger's id) as that run's completion: (router, sink, trigger)."""
    sink = MemorySink()
    r = make_router(cfg, sink, clock=lambda: now[0])
    await r.start()
    assert (await r.submit(Inbound("test", obj=INJURY_EVENT))).ack
    assert await r.idle()
    (first,) = [t for t in sink.received if t.processor == PGS]
    body = {"trigger_id": first.trigger_id, "processor": PGS, "game_date": GAME_DAY.isoformat(),
            "execution_id": "run-1", **report}  # fmt: skip
    assert (await r.submit(Inbound("test", obj=body))).ack
    return r, sink, first


@pytest.mark.parametrize(
    ("defaults", "processor", "wanted"),
    [
        pytest.param({}, {}, False, id="nothing"),
        pytest.param({"run_retries": 2}, {}, True, id="defaults-run_retries"),
        pytest.param({"completion_timeout": "10m"}, {}, True, id="defaults-completion_timeout"),
        pytest.param({"barrier": {"timeout": "1h"}}, {}, True, id="defaults-barrier"),
        pytest.param({"retry_backoff": "5s"}, {}, True, id="defaults-retry_backoff"),
        pytest.param({"retry_backoff": "30s"}, {}, True, id="defaults-retry_backoff-as-default"),
        pytest.param({}, {"retry_backoff": "5s"}, True, id="processor-retry_backoff"),
        pytest.param({}, {"run_retries": 1}, True, id="processor-run_retries"),
        pytest.param({"run_retries": 0}, {}, True, id="defaults-run_retries-0"),
        pytest.param({}, {"run_retries": 0}, True, id="processor-run_retries-0"),
    ],
)
def test_loop_wanted_counts_every_loop_setting(
    tmp_path: Path, defaults: dict[str, Any], processor: dict[str, Any], wanted: bool
) -> None:
    """Any closed-loop setting written in routes.yaml, retry_backoff included, turns the loop on."""
    assert loop_wanted(_registry(tmp_path, defaults, processor)) is wanted


async def test_retry_backoff_alone_redispatches_missed_ids_after_that_backoff(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """With only retry_backoff: 5s set, a partial run's missed ids are re-sent after exactly 5 s (same trigger id)."""
    cfg = load(write_registry(tmp_path, defaults={"retry_backoff": "5s"}))
    now = [1_000_000.0]
    report = {"status": "partial", "missed_entities": ["lalplayer01"]}
    r, sink, first = await _first_pgs_run(cfg, make_router, now, report)
    sent: list[list[str]] = []
    for step in (4.9, 0.1):
        now[0] += step
        await r.fire_due()
        assert await r.idle()
        sent.append([t.trigger_id for t in sink.received if t.processor == PGS])
    assert sent == [[first.trigger_id], [first.trigger_id, first.trigger_id]]


@pytest.mark.parametrize(
    ("defaults", "processor"),
    [
        pytest.param({"run_retries": 0}, {}, id="defaults"),
        pytest.param({}, {"run_retries": 0}, id="processor"),
    ],
)
async def test_run_retries_0_alone_dead_letters_a_failed_run_at_once(
    tmp_path: Path, make_router: RouterFactory, defaults: dict[str, Any], processor: dict[str, Any]
) -> None:
    """With only run_retries: 0 written, a failed run is tracked and dead-lettered at once, never re-sent."""
    cfg = _config(tmp_path, defaults, processor)
    now = [1_000_000.0]
    report = {"status": "failed", "error_message": "boom"}
    r, sink, first = await _first_pgs_run(cfg, make_router, now, report)
    now[0] += 3600.0
    await r.fire_due()
    assert await r.idle()
    loop = r.windows.engine.loop
    assert loop is not None, "the closed loop is off"
    dead = [(e.trigger.trigger_id, e.error) for e in loop.ledger.dead_letters()]
    assert dead == [(first.trigger_id, "boom")]
    assert [t.trigger_id for t in sink.received if t.processor == PGS] == [first.trigger_id]
