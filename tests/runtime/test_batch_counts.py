"""Metrics counted once per batch (runtime/batch_counts.py, metrics.observe_many) hold what
counting each event, each latency on its own holds."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from runtime_support import MemorySink, RouterFactory, game_day_stream
from test_outage_state import make_shared  # noqa: F401 (a fixture)

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.metrics import Metrics, observe_many, observe_n
from scoperouter.runtime.router import Inbound

BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _samples(m: Metrics, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in m.registry.collect()
        for s in fam.samples
        if s.name.startswith(name) and not s.name.endswith("_created")
    }


@pytest.mark.parametrize(
    "values",
    [
        [0.003],
        [0.0, 0.0005, 0.0005001, 0.001],  # on a bound and just past it
        [*BOUNDS, 30.0, 60.0, 61.0, 1e9],  # every bound, the last ones, +Inf
        [0.25] * 7 + [0.0001] * 3,
        [0.7, 0.002, 12.0, 0.04, 0.04, 3.3],
    ],
)
def test_observe_many_equals_one_observe_per_value(values: list[float]) -> None:
    """observe_many leaves the histogram's buckets, count and sum as one observe per value."""
    each, many = Metrics(), Metrics()
    for v in values:
        each.child(each.dispatch_latency, "p").observe(v)
    observe_many(many.child(many.dispatch_latency, "p"), values)
    want = _samples(each, "scoperouter_dispatch_latency")
    got = _samples(many, "scoperouter_dispatch_latency")
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize(
    ("value", "n"), [(0.003, 1), (0.0005, 4), (0.0, 3), (0.7, 22), (61.0, 2), (1e9, 5)]
)
def test_observe_n_equals_n_observes(value: float, n: int) -> None:
    """observe_n(v, n) leaves the histogram's buckets, count and sum as n observes of v."""
    each, once = Metrics(), Metrics()
    for _ in range(n):
        each.child(each.dispatch_latency, "p").observe(value)
    observe_n(once.child(once.dispatch_latency, "p"), value, n)
    want = _samples(each, "scoperouter_dispatch_latency")
    got = _samples(once, "scoperouter_dispatch_latency")
    assert got.keys() == want.keys()
    for key, v in want.items():
        assert got[key] == pytest.approx(v, rel=1e-12), key


def _value(m: Metrics, name: str, **labels: str) -> float:
    v = m.registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


STREAM = [e for e in game_day_stream(30) if "event_id" in e][:12]


PLANS = pytest.mark.parametrize(
    ("plan", "received"),
    [
        # (origin, body) per message; the expected received count by origin
        ([("test", e) for e in STREAM], {"test": 12}),
        ([("test", e) for e in STREAM[:5]] * 2, {"test": 10}),  # the second five: duplicates
        (
            [("test", STREAM[0]), ("pubsub", "not json"), ("test", {"x": 1}), ("push", STREAM[1])],
            {"test": 2, "pubsub": 1, "push": 1},
        ),
    ],
)


async def _counts_add_up(
    r: Any, cfg: LoadedConfig, plan: list[tuple[str, Any]], received: dict[str, int]
) -> None:
    await r.start()
    outcomes = []
    for origin, body in plan:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        # a Pub/Sub message is dead-lettered when invalid; a plain one is refused at once
        dead_letter = origin != "test"
        inbound = Inbound(origin, data=data, message_id="m", dead_letter_on_reject=dead_letter)  # type: ignore[arg-type]
        outcomes.append(await r.submit(inbound))
    m = r.metrics
    for origin, n in received.items():
        assert _value(m, "scoperouter_events_received_total", origin=origin) == n
    statuses = [o.status for o in outcomes]
    accepted = statuses.count("accepted")
    assert _value(m, "scoperouter_events_accepted_total") == accepted
    assert _value(m, "scoperouter_events_duplicate_total") == statuses.count("duplicate")
    rejected = [o.reason for o in outcomes if o.status == "rejected"]
    for reason in set(rejected):
        assert _value(m, "scoperouter_events_rejected_total", reason=reason) == rejected.count(
            reason
        )
    decisions = sum(
        s.value
        for fam in m.registry.collect()
        for s in fam.samples
        if s.name == "scoperouter_decisions_total"
    )
    assert decisions == accepted * len(cfg.registry.processors)
    refused_at_once = sum(1 for o in outcomes if o.status == "rejected" and not o.dead_lettered)
    assert _value(m, "scoperouter_ingest_batch_size_sum") == len(plan) - refused_at_once


@PLANS
async def test_batch_counts_equal_per_event_counts(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    plan: list[tuple[str, Any]],
    received: dict[str, int],
) -> None:
    """received, accepted, duplicate, rejected and decision counts add up per message."""
    await _counts_add_up(make_router(zero_cfg, MemorySink()), zero_cfg, plan, received)


@PLANS
async def test_batch_counts_equal_per_event_counts_on_a_state_store(
    zero_cfg: LoadedConfig,
    make_shared: Any,  # noqa: F811 (test_outage_state's fixture)
    plan: list[tuple[str, Any]],
    received: dict[str, int],
) -> None:
    """On a state store (the state thread counts reasons and duplicates) the counts add up per message too."""
    await _counts_add_up(make_shared(zero_cfg, MemorySink()), zero_cfg, plan, received)


@PLANS
async def test_decisions_by_reason_agree_on_both_stores(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    make_shared: Any,  # noqa: F811 (test_outage_state's fixture)
    plan: list[tuple[str, Any]],
    received: dict[str, int],
) -> None:
    """The state thread's decision counts by reason equal the event loop's (the snapshot + journal store's path)."""
    by_store = []
    for r in (make_router(zero_cfg, MemorySink()), make_shared(zero_cfg, MemorySink())):
        await _counts_add_up(r, zero_cfg, plan, received)
        by_store.append(_samples(r.metrics, "scoperouter_decisions_total"))
    assert by_store[0] == by_store[1] and len(by_store[0]) > 1


def test_metrics_count_the_interpreters_garbage_collections() -> None:
    """python_gc_collections_total{generation} counts collections (how often the young
    generation is scanned under load: runtime/daemon.py GC_GEN0_THRESHOLD)."""
    m = Metrics()
    before = _samples(m, "python_gc_collections_total")
    key = ("python_gc_collections_total", (("generation", "0"),))
    assert key in before
    gc.collect(0)
    after = _samples(m, "python_gc_collections_total")[key]
    assert after >= before[key] + 1  # this one, and any automatic one meanwhile
