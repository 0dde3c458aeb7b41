"""``POST /backfills`` and ``GET /backfills/ID`` behind the daemon's HTTP app (the routes
and their bearer-token check live in :mod:`scoperouter.runtime.http`; this is the logic).

``POST`` body: ``{"start": "YYYY-MM-DD", "end": ..., "processors": [...] | "from": [...],
"phases": "3-6", "max_attempts": N, "completion": "ack" | "event", "rerun": false}`` (as the
CLI; any other key is a 400, as an unknown option is a usage error: a misspelt selection
must not select every processor). It plans (or finds the stored backfill of the same
request: resume; ``"rerun": true`` plans it again as a new one, ``"replaces"`` naming the
stored one) and starts it in the background: 202 ``{"backfill_id", "status": "running",
"resumed", "runs"}`` (and a ``"note"`` when the backfill resumed had every run done); the
same request while it runs answers 200 with the same id. ``GET`` answers the
stored progress (:func:`scoperouter.backfill.service.status`), 404 for an unknown id; 409
when another process runs the same backfill, and 409 ``overlapping_backfill`` when a
backfill running on the same state dir (this process's, the CLI's) -- or, on a shared
(PostgreSQL) state store, on any replica -- rewrites what the new one's runs read or write
(:mod:`scoperouter.backfill.overlap`, checked by :mod:`scoperouter.backfill.claim` and
:mod:`scoperouter.backfill.shared_claim`). Invariants: one task per backfill id in this
process, holding the backfill's run lock (and its shared claim); no two conflicting
backfills run on one state dir, or on one shared state store, at once; a backfill whose
shared claim is lost is stopped (logged, and counted: ``on_claim_lost``); a backfill is
answered ``running`` only while a live process holds that lock (one whose process died is
``interrupted``: :meth:`BackfillApi.recover` on the daemon's start, and every ``GET``); it
is never resumed on its own (the store keeps the request, not the POST's ``completion`` or
``max_attempts``): the same ``POST`` resumes it. On a shared store, ``GET`` of an id this
state dir does not know answers from a live claim naming it, 404 only when none does
(:meth:`BackfillApi.lookup`). With an executor that has modes (the daemon's targets), the
``POST`` and ``GET`` answers carry ``warnings`` naming each live processor whose runs read
the runs of a shadow upstream, which are sent nothing (:mod:`scoperouter.backfill.shadow_reads`):
the runs are not held.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoperouter.backfill.claim import (
    Claimed,
    ClaimLost,
    Overlap,
    SharedStoreUnavailable,
    claim,
)
from scoperouter.backfill.executor import ModalExecutor, RunExecutor, RunOutcome
from scoperouter.backfill.http_body import request_of, rerun_of
from scoperouter.backfill.overlap import reach_back
from scoperouter.backfill.plan import PlanError
from scoperouter.backfill.service import (
    Prepared,
    ack_warning,
    execute,
    prepare,
    queued_targets,
    shadow_note,
    status,
    store_path,
)
from scoperouter.backfill.store import AlreadyRunning, BackfillStore
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.runtime.sinks import Sink

if TYPE_CHECKING:
    from scoperouter.backfill.daemon_executor import CompletionLookup
    from scoperouter.backfill.shared_claim import SharedClaims

Answer = tuple[int, dict[str, Any]]


def utc_today() -> date:
    """The default as-of: today in UTC (``commands.as_of``, the router's ``as_of=None``)."""
    return datetime.now(UTC).date()


logger = logging.getLogger("scoperouter.backfill")


class BackfillApi:
    def __init__(
        self,
        registry: CompiledRegistry,
        relations: Callable[[], RelationStore | None],
        state_dir: Path,
        executor: Callable[[Mapping[str, Any]], RunExecutor],
        *,
        as_of: Callable[[], date] | None = None,
        queued: frozenset[str] = frozenset(),
        shared: SharedClaims | None = None,
        no_event_completions: str | None = None,
        on_claim_lost: Callable[[str], None] | None = None,
        shadow: frozenset[str] | None = None,
    ) -> None:
        self.registry = registry
        # the processors whose runs are sent in shadow (nothing) when first attempted now:
        # POST and GET warn about the live runs reading their runs; None: the executor has
        # no modes (every run is run), nothing to warn about
        self.shadow = shadow
        # called with why (lease_lost, lease_unconfirmed) when a backfill is stopped because
        # its shared claim was lost: the daemon counts it; None: only logged
        self.on_claim_lost = on_claim_lost
        # why completion "event" cannot be waited for here (no execution log to read the
        # completions from), None: it can
        self.no_event_completions = no_event_completions
        # the shared state store's backfill claims (replicas), None: this state dir only
        self.shared = shared
        self._claiming = asyncio.Lock()  # one claim at a time in this process
        # processors whose target only queues a trigger: completion "ack" is then not "run"
        # (service.queued_targets); such a backfill is answered with a warning
        self.queued = queued
        # a getter, not the data: a relation reload swaps the daemon's data and the old
        # copy must be freed (tests/runtime/test_heap_freeze.py); plans use the current one
        self.relations = relations
        self.state_dir = state_dir
        self.executor = executor
        # today in UTC, as the router's as-of and the CLI's (a local date.today() planned
        # another day than they do for hours every day on a host not in UTC)
        self.as_of = as_of or utc_today
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self._reach = reach_back(registry)
        # per processor, shared by every backfill of this process: each backfill's scheduler
        # bounds its own runs by the target's concurrency, these bound them all together
        self._slots: dict[str, asyncio.Semaphore] = {
            n: asyncio.Semaphore(p.target.concurrency) for n, p in registry.processors.items()
        }

    async def start(self, body: object) -> Answer:
        # every check of the body comes before prepare, which plans and stores the backfill:
        # a refused POST stores nothing (the same request later is planned anew, as of then)
        body_map: Mapping[str, Any] = body if isinstance(body, dict) else {}
        try:
            req, max_attempts = request_of(body)
            rerun = rerun_of(body)
            if body_map.get("completion") == "event" and self.no_event_completions:
                raise ValueError(self.no_event_completions)
            # planning a season takes a fraction of a second: off the event loop
            prep = await asyncio.to_thread(
                prepare,
                self.registry,
                self.relations(),
                req,
                state_dir=self.state_dir,
                as_of=self.as_of(),
                rerun=rerun,
            )
        except (PlanError, ValueError, KeyError, TypeError) as exc:
            return 400, {"error": "invalid_backfill", "detail": str(exc)[:300]}
        except AlreadyRunning as exc:  # a rerun of the stored backfill while it runs
            return 409, {"error": "already_running", "detail": str(exc)}
        bid = prep.backfill_id
        # live runs reading shadow runs (the stored runs' modes: a read of the store)
        shadowed = (
            None
            if self.shadow is None
            else await asyncio.to_thread(shadow_note, prep, self.shadow, '"rerun": true')
        )
        async with self._claiming:
            # no other claim of this process between the self.tasks check and the task
            running = self.tasks.get(bid)
            if running is not None and not running.done():
                prep.store.close()
                return 200, {"backfill_id": bid, "status": "running", "resumed": True}

            # another backfill running on this state dir -- of this process, the CLI,
            # another daemon -- or on any replica of the shared state store rewrites what
            # this one's runs read (or write): nothing orders the runs of two backfills, so
            # a stale run could finish last. The store's start lock is held for
            # milliseconds by whoever holds it; a shared claim is a database round trip,
            # made off the event loop
            take = functools.partial(
                claim, prep.store, self._reach, prep.plan, bid, time.time(), self.shared
            )
            try:
                got = take() if self.shared is None else await _off_loop(take, prep)
            except AlreadyRunning as exc:
                prep.store.close()
                return 409, {"error": "already_running", "detail": str(exc)}
            except SharedStoreUnavailable as exc:  # nothing started: POST again later
                prep.store.close()
                return 503, {"error": "state_store_unavailable", "detail": str(exc)}
            except Exception:
                prep.store.close()
                raise
            if isinstance(got, Overlap):
                prep.store.close()
                return 409, {
                    "error": got.reason,
                    "backfill_id": got.backfill_id,
                    "detail": got.detail("POST again"),
                }
            claimed = got

            async def go() -> None:
                try:
                    await claimed.run(
                        execute(
                            prep,
                            self.registry,
                            _Shared(self.executor(body_map), self._slots),
                            max_attempts=max_attempts,
                            lock=False,
                        )
                    )
                except ClaimLost as exc:
                    logger.warning("%s", exc, extra={"backfill_id": bid, "reason": exc.why})
                    if self.on_claim_lost is not None:
                        self.on_claim_lost(exc.why)
                except Exception:
                    logger.exception("backfill %s stopped", bid)
                finally:
                    if claimed.lease is None:
                        claimed.release()
                    else:  # deletes its shared claim: off the event loop
                        await asyncio.to_thread(claimed.release)
                    prep.store.close()

            self.tasks[bid] = asyncio.ensure_future(go())
        answer: dict[str, Any] = {
            "backfill_id": bid,
            "status": "running",
            "resumed": prep.resumed,
            "runs": len(prep.plan.runs),
        }
        if prep.replaced is not None:
            answer["replaces"] = prep.replaced
        note = prep.finished_note('"rerun": true')
        if note is not None:
            answer["note"] = note.removeprefix("note: ")
        if prep.stale_after is not None:  # see Prepared.stale_after
            answer["stale_after"] = prep.stale_after_json()
            logger.warning("%s", prep.stale_after_warning())
        if prep.cut_off is not None:  # see Prepared.cut_off
            answer["cut_off"] = prep.cut_off_json()
            logger.warning("%s", prep.cut_off_warning())
        warnings: list[str] = []  # every warning; "warning": the ack one alone, as before
        if body_map.get("completion", "ack") == "ack":
            queued = ack_warning(prep.plan, self.queued)
            if queued is not None:
                answer["warning"] = queued.removeprefix("warning: ")
                warnings.append(answer["warning"])
        if shadowed is not None:
            warnings.append(shadowed.removeprefix("warning: "))
        for text in warnings:
            logger.warning("backfill %s: %s", bid, text)
        if warnings:
            answer["warnings"] = warnings
        return 202, answer

    def recover(self) -> list[str]:
        """On the daemon's start: every backfill stored ``running`` whose process died is
        stored ``interrupted`` (logged, with how to resume it); their ids."""
        path = store_path(self.state_dir)
        if not path.exists():
            return []
        try:
            store = BackfillStore(path)
        except (sqlite3.Error, OSError):  # a broken backfill store never stops the router
            logger.exception("cannot check the stored backfills for interrupted ones")
            return []
        try:
            found = store.reconcile_all(time.time())
        except (sqlite3.Error, OSError):
            logger.exception("cannot check the stored backfills for interrupted ones")
            found = []
        finally:
            store.close()
        for bid in found:
            logger.warning(
                "backfill %s was interrupted: the process running it died; POST the same "
                "request to /backfills to resume it (its done runs are not run again)",
                bid,
                extra={"backfill_id": bid},
            )
        return found

    async def lookup(self, bid: str) -> Answer:
        """What ``GET /backfills/ID`` answers: this state dir's backfill (:meth:`get`), else,
        on a shared store, the one a live claim names (a database round trip: off the event
        loop); 503 when that store cannot be asked, never a 404 it cannot vouch for."""
        code, answer = self.get(bid)
        if code != 404 or self.shared is None:
            return code, answer
        try:
            found = await asyncio.to_thread(self.shared.running, bid)
        except SharedStoreUnavailable as exc:
            return 503, {"error": "state_store_unavailable", "detail": str(exc)}
        return (code, answer) if found is None else (200, found.answer())

    def get(self, bid: str) -> Answer:
        """``bid`` as this state dir stores it (its progress), 404 when it does not."""
        path = store_path(self.state_dir)
        if not path.exists():
            return 404, {"error": "unknown_backfill", "detail": bid}
        store = BackfillStore(path)
        try:
            st = status(store, bid, self.shadow)
        finally:
            store.close()
        if st is None:
            return 404, {"error": "unknown_backfill", "detail": bid}
        return 200, st

    async def close(self) -> None:
        for t in self.tasks.values():
            t.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.shared is not None:
            self.shared.close()


async def _off_loop(take: Callable[[], Claimed | Overlap], prep: Prepared) -> Claimed | Overlap:
    """``take()`` (a claim) in a thread. Cancelled meanwhile (the daemon stopping), the claim
    still completes there: it is then given back, and the store closed, not leaked."""
    fut = asyncio.ensure_future(asyncio.to_thread(take))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:

        def undo(done: asyncio.Future[Claimed | Overlap]) -> None:
            if not done.cancelled() and done.exception() is None:
                got = done.result()
                if isinstance(got, Claimed):
                    got.release()
            prep.store.close()

        fut.add_done_callback(undo)
        raise


class _Shared:
    """An executor whose runs take one of their processor's slots, shared by all the
    backfills the daemon runs at once (a target's ``concurrency`` is per target)."""

    def __init__(self, inner: RunExecutor, slots: dict[str, asyncio.Semaphore]) -> None:
        self.inner = inner
        self.slots = slots

    def mode_now(self, processor: str) -> str | None:
        """The inner executor's (None: it has no modes)."""
        inner = self.inner
        return inner.mode_now(processor) if isinstance(inner, ModalExecutor) else None

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int, mode: str | None = None
    ) -> RunOutcome:
        slot = self.slots.get(processor)
        if slot is None:
            return await self._inner(processor, day, backfill_id, attempt, mode)
        async with slot:
            return await self._inner(processor, day, backfill_id, attempt, mode)

    async def _inner(
        self, processor: str, day: date, backfill_id: str, attempt: int, mode: str | None
    ) -> RunOutcome:
        inner = self.inner
        if mode is not None and isinstance(inner, ModalExecutor):
            return await inner.execute(
                processor, day, backfill_id=backfill_id, attempt=attempt, mode=mode
            )
        return await inner.execute(processor, day, backfill_id=backfill_id, attempt=attempt)


def backfill_api(
    registry: CompiledRegistry,
    relations: Callable[[], RelationStore | None],
    state_dir: Path,
    sinks: Mapping[str, Sink],
    as_of: date | None,
    log_path: Path | None = None,
    *,
    shadow: bool = False,
    shared: SharedClaims | None = None,
    no_event_completions: str | None = None,
    on_claim_lost: Callable[[str], None] | None = None,
    build_sink: Callable[[str], Sink] | None = None,
    completions: CompletionLookup | None = None,
) -> BackfillApi:
    """The daemon's backfills: triggers through its sinks, completions read (by trigger id)
    from ``completions`` (replicas: the shared store's completion ledger), else from the
    execution log it writes (``log_path``, default <state-dir>/execution_log.sqlite);
    ``shadow`` (``serve --shadow``): every processor is shadow, nothing is sent; ``shared``:
    the claims of the replicas' shared state store (each backfill is checked against them);
    ``no_event_completions``: why completion "event" is refused (400), None to take it;
    ``on_claim_lost``: called with why when a backfill's shared claim is lost (metrics);
    ``build_sink``: the target of a processor ``sinks`` lacks (shadow now), built for its
    runs first sent live (once per processor for every backfill of the daemon)."""
    late: dict[str, Sink] = {}

    def late_sink(processor: str) -> Sink:
        assert build_sink is not None
        if processor not in late:
            late[processor] = build_sink(processor)
        return late[processor]

    def executor(body: Mapping[str, Any]) -> RunExecutor:
        from scoperouter.backfill.daemon_executor import (
            TargetExecutor,
            log_completions,
            shadow_processors,
        )

        lookup = completions or log_completions(log_path or state_dir / "execution_log.sqlite")
        return TargetExecutor(
            dict(sinks),
            lookup,
            date_field=registry.date_field,
            ack_is_completion=body.get("completion", "ack") != "event",
            shadow=frozenset(registry.processor_names) if shadow else shadow_processors(registry),
            build_sink=None if build_sink is None else late_sink,
        )

    from scoperouter.backfill.daemon_executor import shadow_processors

    shadowed = frozenset(registry.processor_names) if shadow else shadow_processors(registry)
    return BackfillApi(
        registry,
        relations,
        state_dir,
        executor,
        as_of=(lambda: as_of) if as_of else None,
        queued=queued_targets(registry, shadowed),
        shadow=shadowed,
        shared=shared,
        no_event_completions=no_event_completions,
        on_claim_lost=on_claim_lost,
    )
