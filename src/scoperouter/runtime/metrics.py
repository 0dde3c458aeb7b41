"""Prometheus metrics of one router instance (a private CollectorRegistry per app, so
several routers -- e.g. in tests -- never share counters).

Invariant: :func:`observe_many` and :func:`observe_n` leave a histogram exactly as observing
each value in turn would (tests/runtime/test_batch_counts.py checks them against
``observe``); a label value taken from an event passes :func:`bounded_label` (at most
:data:`MAX_LABEL_CHARS` characters).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# a label value taken from an event (an unknown source, a referenced table) is at most this
# long: a longer one is cut and ends with ``~`` and 12 hex digits of its SHA-256, so two long
# names stay two labels while /metrics does not grow with the names producers send
MAX_LABEL_CHARS = 128
_DIGEST_CHARS = 12


def bounded_label(text: str) -> str:
    """``text`` when at most :data:`MAX_LABEL_CHARS` long, else its first characters, ``~``
    and a digest of the whole of it (:data:`MAX_LABEL_CHARS` in all)."""
    if len(text) <= MAX_LABEL_CHARS:
        return text
    # surrogatepass: a lone surrogate in a name must not break the count
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]
    return f"{text[: MAX_LABEL_CHARS - _DIGEST_CHARS - 1]}~{digest}"


_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class LogQueue(Protocol):
    """What ``/metrics`` reads of the execution log's hand-off queue
    (:class:`~scoperouter.runtime.log_bridge.LogBridge`)."""

    @property
    def pending(self) -> int: ...
    @property
    def max_pending(self) -> int: ...
    @property
    def waits(self) -> int: ...
    @property
    def waited_s(self) -> float: ...
    @property
    def dropped(self) -> int: ...
    @property
    def log_rows_dropped(self) -> int: ...


class _LogQueueCollector(Collector):
    """The execution log's queue, read when ``/metrics`` is scraped: nothing per event."""

    def __init__(self, queue: LogQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        q = self.queue
        yield GaugeMetricFamily(
            "scoperouter_execution_log_pending",
            "Events and dispatch outcomes handed to the execution log and not yet written.",
            value=q.pending,
        )
        yield GaugeMetricFamily(
            "scoperouter_execution_log_max_pending",
            "The bound of that queue: at it, the ingest waits for the log (backpressure).",
            value=q.max_pending,
        )
        yield CounterMetricFamily(
            "scoperouter_execution_log_backpressure_waits",
            "Times the ingest waited for the execution log (its queue full).",
            value=q.waits,
        )
        yield CounterMetricFamily(
            "scoperouter_execution_log_backpressure_seconds",
            "Seconds the ingest spent waiting for the execution log (its queue full).",
            value=q.waited_s,
        )
        yield CounterMetricFamily(
            "scoperouter_execution_log_dropped",
            "Events and dispatch outcomes never written to the execution log (the log "
            "thread failed, or the shutdown budget ran out; each is logged).",
            value=q.dropped,
        )
        yield CounterMetricFamily(
            "scoperouter_execution_log_rows_dropped",
            "Rows the execution log itself never wrote: a row its database cannot store (a "
            "value it refuses), or a failing log's buffer past its bound (each logged).",
            value=q.log_rows_dropped,
        )


class _StoreCollector(Collector):
    """A shared state store's connection losses, read when ``/metrics`` is scraped (only a
    store counting them: PostgreSQL's ``connections_reopened``)."""

    def __init__(self, store: object) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "scoperouter_state_connections_reopened",
            "State store connections opened again after one was lost (a failover, a "
            "restart, a session the server ended; lease renewals' included): each is "
            "logged; a loss found as a call began costs no call.",
            value=getattr(self.store, "connections_reopened", 0),
        )


class Metrics:
    """Every counter the daemon exposes on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        if registry is None:  # (a registry given may hold it already: the default one does)
            # the interpreter's collections: python_gc_collections_total{generation} and the
            # objects freed -- process-wide, read at scrape time (gc.get_stats), no callback
            r.register(GC_COLLECTOR)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}  # child()
        self._log_collector: _LogQueueCollector | None = None  # watch_log()
        self._store_collector: _StoreCollector | None = None  # watch_store()
        self.events_received = Counter(
            "scoperouter_events_received", "Messages received, by origin.", ["origin"], registry=r
        )
        self.events_rejected = Counter(
            "scoperouter_events_rejected",
            "Messages/requests rejected, by reason (auth, size, malformed, invalid event).",
            ["reason"],
            registry=r,
        )
        self.events_duplicate = Counter(
            "scoperouter_events_duplicate", "Events already routed (same event_id).", registry=r
        )
        self.events_accepted = Counter(
            "scoperouter_events_accepted", "Events routed and durably stored.", registry=r
        )
        self.decisions = Counter(
            "scoperouter_decisions", "Planner decisions, by reason.", ["reason"], registry=r
        )
        self.event_fields_ignored = Counter(
            "scoperouter_event_fields_ignored",
            "Events accepted with a field the router only records that does not read, routed "
            "as if it were absent (produced_at, timestamp: not a time; each logged), by field.",
            ["field"],
            registry=r,
        )
        self.unknown_source_events = Counter(
            "scoperouter_unknown_source_events",
            "Accepted events whose source routes.yaml names nowhere (reason unknown_source), "
            "by source (bounded: later sources count as '(other)').",
            ["source"],
            registry=r,
        )
        self.undeclared_reads = Counter(
            "scoperouter_undeclared_reads",
            "Tables a run read (referenced_tables in its completion event) that routes.yaml "
            "does not declare as an input of the processor, by processor and table (bounded: "
            "later pairs count as '(other)').",
            ["processor", "table"],
            registry=r,
        )
        self.triggers_fired = Counter(
            "scoperouter_triggers_fired",
            "Triggers fired by windows, by scope.",
            ["scope"],
            registry=r,
        )
        self.triggers_dispatched = Counter(
            "scoperouter_triggers_dispatched",
            "Triggers acknowledged by their target (mode live), or planned and logged without "
            "calling any target (mode shadow), by processor and mode.",
            ["processor", "mode"],
            registry=r,
        )
        self.dispatch_attempts = Counter(
            "scoperouter_dispatch_attempts",
            "Dispatch attempts, by processor, outcome (ok, retry, failed, shadow) and mode.",
            ["processor", "outcome", "mode"],
            registry=r,
        )
        self.processor_mode = Gauge(
            "scoperouter_processor_mode",
            "1 for the mode each processor runs in (live: dispatches; shadow: logs only).",
            ["processor", "mode"],
            registry=r,
        )
        self.dispatch_latency = Histogram(
            "scoperouter_dispatch_latency_seconds",
            "From a trigger firing to its target's acknowledgement (all attempts).",
            ["processor"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.unknown_processor_work = Gauge(
            "scoperouter_unknown_processor_work",
            "Open windows and triggers still to send, found in the state store at start, of "
            "processors not in routes.yaml (renamed or removed): they fire and go to "
            "defaults.target, by kind (windows, triggers).",
            ["kind"],
            registry=r,
        )
        # a shared store's processors routed by other replicas only (runtime/orphans.py)
        self.foreign_processors = Gauge(
            "scoperouter_foreign_processors",
            "Processors not in routes.yaml that other replicas on the shared store route (a "
            "rolling deploy): their windows and triggers are left to those replicas.",
            registry=r,
        )
        self.orphan_work = Counter(
            "scoperouter_orphan_work",
            "Windows fired and triggers claimed here of processors not in routes.yaml that no "
            "replica routes (renamed or removed): sent to defaults.target, by kind.",
            ["kind"],
            registry=r,
        )
        self.trigger_fields_ignored = Counter(
            "scoperouter_trigger_fields_ignored",
            "Outbox rows read with fields this version does not know (a newer replica's): "
            "the fields are left out of what is logged, the body is sent as stored.",
            registry=r,
        )
        self.open_windows = Gauge(
            "scoperouter_open_windows", "Coalescing windows currently open.", registry=r
        )
        # the closed loop (docs/ledger.md)
        self.triggers_open = Gauge(
            "scoperouter_triggers_open",
            "Dispatched triggers without a completion yet (incl. re-runs waiting their backoff).",
            registry=r,
        )
        self.triggers_held = Gauge(
            "scoperouter_triggers_held", "Windows held at a fan-in barrier.", registry=r
        )
        self.triggers_held_oldest = Gauge(
            "scoperouter_triggers_held_oldest_seconds",
            "How long the longest-held window at a fan-in barrier has waited (0: none held); "
            "one that keeps growing waits for an upstream whose completion was lost.",
            registry=r,
        )
        self.completions_parked = Gauge(
            "scoperouter_completions_parked",
            "Completions naming a Pub/Sub message id not recorded yet (waiting for it).",
            registry=r,
        )
        self.completions_unmatched = Counter(
            "scoperouter_completions_unmatched",
            "Completions that closed nothing: parked ones whose message id was never recorded"
            " in time, ones naming (by processor and date) no registry processor, ones naming"
            " a trigger the ledger does not hold (forgotten, never sent), and ones produced"
            " before every open trigger of their processor and date fired.",
            registry=r,
        )
        self.completion_ids_evicted = Counter(
            "scoperouter_completion_ids_evicted",
            "Completion event ids the ledger dropped for room before their day was up"
            " (memory: applied, unmatched): a redelivery of one is applied again.",
            ["memory"],
            registry=r,
        )
        self.reports_unread = Counter(
            "scoperouter_reports_unread",
            "Bare completion reports (no source: the SDK's report()) taken while the closed "
            "loop is off: accepted, routed nothing, read by nothing.",
            registry=r,
        )
        self.triggers_timed_out = Counter(
            "scoperouter_triggers_timed_out",
            "Triggers without a completion within completion_timeout.",
            registry=r,
        )
        self.trigger_outcomes = Counter(
            "scoperouter_trigger_outcomes",
            "Ledger transitions: succeeded, failed, partial, timed_out, redispatch, "
            "dead_letter, redrive.",
            ["outcome"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "scoperouter_dead_lettered",
            "Dead letters written, by kind (event, trigger) and reason.",
            ["kind", "reason"],
            registry=r,
        )
        self.dead_letters_pruned = Counter(
            "scoperouter_dead_letters_pruned",
            "Dead letters of rejected events deleted past dead_letter_retention (each pass "
            "logged at WARNING); with dead_letter_topic set, only letters the topic received.",
            registry=r,
        )
        self.dead_letter_topic_failures = Counter(
            "scoperouter_dead_letter_topic_failures",
            "Publishes to dead_letter_topic that failed, by kind (event: kept in the state "
            "store and retried each housekeeping pass; trigger: not retried, its dead row "
            "keeps it).",
            ["kind"],
            registry=r,
        )
        self.redispatched = Counter(
            "scoperouter_redispatched_after_restart",
            "Pending triggers dispatched again after a restart (possible duplicates downstream).",
            registry=r,
        )
        self.leases_dropped = Counter(
            "scoperouter_leases_dropped",
            "Triggers (queued, or fired here) a replica did not start, its lease on them "
            "lost (another replica took them) or unconfirmed (ended by its clock: renewals "
            "failing, or the process stalled), by reason.",
            ["reason"],
            registry=r,
        )
        self.deliveries_unsettled = Counter(
            "scoperouter_deliveries_unsettled",
            "Triggers whose delivery ended without an outcome (its task cancelled, not by a "
            "stop, or a bug): given back to the store and sent again, by processor.",
            ["processor"],
            registry=r,
        )
        self.backfill_claims_lost = Counter(
            "scoperouter_backfill_claims_lost",
            "Backfills this replica stopped because their claim on the shared state store was "
            "lost (gone: it ran out and another process took its place) or unconfirmed (not "
            "renewed within its lease), so an overlapping backfill may have started elsewhere, "
            "by reason.",
            ["reason"],
            registry=r,
        )
        for reason in ("lease_lost", "lease_unconfirmed"):  # shared_claim.LEASE_*
            self.backfill_claims_lost.labels(reason)  # exported as 0 before the first
        self.inflight = Gauge(
            "scoperouter_dispatch_inflight", "Triggers being dispatched.", registry=r
        )
        self.circuit_open = Gauge(
            "scoperouter_target_circuit_open",
            "1 while a processor's target circuit is open (its backlog waits in the store).",
            ["processor"],
            registry=r,
        )
        self.ingest_batch = Histogram(
            "scoperouter_ingest_batch_size",
            "Messages per durable ingest transaction.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )

        self.ingest_failures = Counter(
            "scoperouter_ingest_failures",
            "Ingest transactions that failed, their batch answered 503 / nacked (redelivered "
            "by its sources), by reason: lock_timeout (a lock held past the state store's "
            "lock_timeout: a replica frozen or cut off mid-transaction?; on SQLite, another "
            "process writing the state file past its busy timeout) or store_error.",
            ["reason"],
            registry=r,
        )
        for reason in ("lock_timeout", "store_error"):
            self.ingest_failures.labels(reason)  # exported as 0 before the first failure
        self.ingest_seconds = Histogram(
            "scoperouter_ingest_transaction_seconds",
            "An ingest batch's wait for its store transaction: queued behind other state "
            "jobs, then written and committed (the persistence pause its events saw).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )

        self.relation_reloads = Counter(
            "scoperouter_relation_reloads",
            "Relation data reloads (file change or SIGHUP), by result (ok, error).",
            ["result"],
            registry=r,
        )
        for result in ("ok", "error"):
            self.relation_reloads.labels(result)  # exported as 0 before the first reload
        self.relations_loaded_timestamp = Gauge(
            "scoperouter_relations_loaded_timestamp_seconds",
            "Newest modification time (Unix seconds) among the relation CSV files in use, "
            "as stat'ed when they were read (NaN until relation data is loaded, and without "
            "relation data). Staleness alerts: the per-file gauge.",
            registry=r,
        )
        # NaN, not 0: `time() - gauge > 2 * 86400` must not fire before anything is loaded
        self.relations_loaded_timestamp.set(float("nan"))
        self.relation_file_timestamp = Gauge(
            "scoperouter_relation_file_timestamp_seconds",
            "Modification time (Unix seconds) of each relation CSV file in use, by file name, "
            "as stat'ed when it was read: alert on the oldest (a roster that stopped updating "
            "while the schedule still does).",
            ["file"],
            registry=r,
        )

    def watch_log(self, queue: LogQueue) -> None:
        """Export ``queue`` (the router's execution-log bridge) on ``/metrics``, read at each
        scrape; a later call replaces the queue watched."""
        if self._log_collector is not None:
            self.registry.unregister(self._log_collector)
        self._log_collector = _LogQueueCollector(queue)
        self.registry.register(self._log_collector)

    def watch_store(self, store: object) -> None:
        """Export ``store``'s connection losses on ``/metrics`` (read at each scrape) when
        it counts them (``connections_reopened``: PostgreSQL); nothing for another store."""
        if self._store_collector is not None:  # a later call replaces the store watched
            self.registry.unregister(self._store_collector)
            self._store_collector = None
        if hasattr(store, "connections_reopened"):
            self._store_collector = _StoreCollector(store)
            self.registry.register(self._store_collector)

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, cached: the hot path's label sets are few (origins,
        processors, statuses) and ``labels()`` validates, locks and hashes on every call."""
        key = (id(metric), values)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*values)
        return c

    def render(self) -> bytes:
        return generate_latest(self.registry)


def observe_many(histogram: Any, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every ``v`` of ``values`` (a labelled child), with each
    bucket touched once: ``observe`` takes the sum's lock and one bucket's per value (the
    hot path observes a whole delivery's latencies at once). The bucket of ``v`` is the
    first whose upper bound is ``>= v``, as in ``observe``."""
    bounds = getattr(histogram, "_upper_bounds", None)  # prometheus_client's internals
    if len(values) == 1 or bounds is None:  # (gone in another version: the public way)
        for v in values:
            histogram.observe(v)
        return
    counts = [0] * len(bounds)
    total = 0.0
    for v in values:
        total += v
        counts[bisect_left(bounds, v)] += 1
    histogram._sum.inc(total)
    buckets = histogram._buckets
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)


def observe_n(histogram: Any, value: float, n: int) -> None:
    """``histogram.observe(value)`` ``n`` times (a labelled child), its bucket and sum
    touched once (the triggers of one ingest batch, delivered together, share a latency)."""
    bounds = getattr(histogram, "_upper_bounds", None)  # prometheus_client's internals
    if bounds is None:  # (gone in another version: the public way)
        for _ in range(n):
            histogram.observe(value)
        return
    histogram._sum.inc(value * n)
    histogram._buckets[bisect_left(bounds, value)].inc(n)
