"""The routing engine's windows, made durable in the store (snapshot + journal).

Invariant: the store always holds what rebuilds the engine's committed windows exactly --
the last snapshot plus every engine input journaled since (``add`` with its event and
decision, ``due`` / ``flush`` with their time; with the closed loop also ``complete``,
``request`` and ``alias``, the Pub/Sub message id a trigger was published as), because the
engine is a pure state machine fed explicit times. Journal rows and fired triggers are written in the caller's
transaction; the bookkeeping that depends on the commit (:meth:`DurableWindows.after_commit`)
runs only after it. A transaction that failed leaves the engine dirty:
:meth:`DurableWindows.reload` rebuilds it from the store. Runs on the state thread only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.decisions import Decision
from scoperouter.router.engine import Fired, RoutingEngine
from scoperouter.router.journal_replay import (
    MODES_META,
    REGISTRY_META,
    UNTRACKED_META,
    JournalRow,
    modes_json,
    rebuild,
    replay_registry,
    replay_spec_json,
    written_modes,
)
from scoperouter.router.window_state import CLOCK_SLACK_S
from scoperouter.router.windows import WindowBook
from scoperouter.runtime import loop_runtime, modes
from scoperouter.runtime.dispatcher import Committed
from scoperouter.runtime.marks import Alias
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.sinks import trigger_bytes
from scoperouter.runtime.store import Store

logger = logging.getLogger("scoperouter.runtime")

__all__ = ["REGISTRY_META", "DurableWindows", "replay_registry", "replay_spec_json"]


class DurableWindows:
    def __init__(
        self,
        registry: CompiledRegistry,
        store: Store,
        options: RouterOptions,
        clock: Callable[[], float],
    ) -> None:
        self.registry = registry
        self.store = store
        self.options = options
        self.clock = clock
        # the closed loop (docs/ledger.md) when the registry asks for it
        self.loop_on = loop_runtime.loop_wanted(registry)
        self.mirror = loop_runtime.LoopMirror(store.path.parent) if self.loop_on else None
        self._mirrored = -1  # the loop version last written to loop.json
        self._mirror_at = float("-inf")
        self._mirror_every = loop_runtime.MIRROR_MIN_INTERVAL_S  # seconds between rewrites
        # the mode each processor's triggers fire in now, stored with each of them (a
        # window a decision joined while its processor fired live fires live); a trigger
        # fired in shadow is never sent: the ledger does not track it (one fired live
        # before a restart that made its processor shadow stays in it: it is still
        # delivered, see restore)
        self.modes = modes.fire_modes(registry, options.shadow)
        self.engine = RoutingEngine(
            registry, journal=self._journal, loop=self.loop_on, modes=self.modes
        )
        self.next_deadline: float | None = None  # read by the event loop's timer
        self.latest_at = float("-inf")  # the open windows' latest last_at, bound (due_at)
        self.journal_replayed = 0
        self.restored_windows = 0
        self.stale = False  # a failed transaction left uncommitted changes in the engine
        self._jbuf: list[JournalRow] = []
        self._json: tuple[Event, str, dict[int, str]] | None = None  # the event being added
        self._journal_rows = 0
        self._last_compact = 0.0
        self._persisted_empty = False  # the store holds an empty book (no journal)
        self._on_commit: tuple[bool, int] | None = None  # (_persisted_empty, _journal_rows)
        self._spec_json: str | None = None  # replay_spec_json(registry), computed once
        self.waiting: set[str] = set()  # see persist / take_waiting

    @property
    def book(self) -> WindowBook:
        return self.engine.book

    # ------------------------------------------------------------------ journal
    def _journal(self, op: str, now: float, ev: Event | None, d: Decision | None) -> None:
        if op != "add":
            self._jbuf.append((op, now, None, None))
            return
        assert ev is not None and d is not None
        cur = self._json
        if cur is not None and cur[0] is ev:
            ev_json, d_json = cur[1], cur[2].get(id(d)) or d.model_dump_json()
        else:
            ev_json, d_json = ev.model_dump_json(), d.model_dump_json()
        self._jbuf.append(("add", now, ev_json, d_json))

    def accept(
        self, ev: Event, ev_json: str, runs: Sequence[tuple[Decision, str]], now: float
    ) -> list[Fired]:
        """The engine's steps 1-3 for one planned event (caller holds the transaction);
        ``runs``: its run decisions with their JSON."""
        self._json = (ev, ev_json, {id(d): js for d, js in runs})
        try:
            return self.engine.accept(ev, [d for d, _js in runs], now)
        finally:
            self._json = None

    def journal_mark(self) -> int:
        """A point to roll the transaction's journal buffer back to (:meth:`journal_undo`)."""
        return len(self._jbuf)

    def journal_undo(self, mark: int) -> None:
        """Forget the journal rows since ``mark`` (their savepoint was rolled back)."""
        del self._jbuf[mark:]

    def undo_item(self, mark: int) -> None:
        """One item's savepoint was rolled back (caller holds the transaction): forget its
        journal rows (those since ``mark``), write the ones before it into the transaction
        and rebuild the engine from the store. What the item did to the engine (windows its
        tick fired, a window half-merged, a completion) is gone, so the rest of the batch
        is routed on -- and journaled against -- the state this transaction commits: rows
        of a later item, replayed on it at a restart, fire nothing the outbox did not get."""
        self.journal_undo(mark)
        if self._jbuf:
            self.store.journal_many(self._jbuf)
        self.restore()  # reads this transaction's rows; empties the buffer

    def tick(self, now: float) -> list[Fired]:
        return self.engine.tick(now) + self.requests(now)

    def complete(self, ref: CompletionRef, now: float) -> str | None:
        """A completion for the ledger (caller holds the transaction; journaled). Returns
        why it matched no trigger, when the ledger says (``LedgerBook.last_unmatched``)."""
        loop = self.engine.loop
        if loop is None:
            return None
        self._jbuf.append(("complete", now, loop_runtime.ref_to_json(ref), None))
        self.engine.complete(ref, now)
        return loop.ledger.last_unmatched

    def alias(self, m: Alias) -> None:
        """A trigger was published as message ``m.message_id``: the ledger maps a completion
        naming that id to the trigger (caller holds the transaction: the journal row is
        written now, with the delivery's mark). A no-op without the closed loop."""
        if self.engine.loop is None:
            return
        self.store.journal_many([("alias", m.at, m.message_id, m.trigger_id)])
        self._journal_rows += 1
        self.engine.alias(m.message_id, m.trigger_id, m.at)

    def undelivered(self, trigger_id: str, row_id: int, at: float, error: str) -> None:
        """Outbox row ``row_id`` of ``trigger_id`` is a dead letter, never delivered: no run
        of it will report, so the ledger hears a failed run of that delivery (re-run within
        ``run_retries``, else a dead letter -- which ends a downstream barrier's wait, as a
        ledger dead letter does). Caller holds the transaction: the journal row is written
        now, with the mark. A no-op without the closed loop, for a trigger the ledger does
        not hold (shadow, forgotten) and for a row it heard of already (the mark written
        again after its transaction failed)."""
        loop = self.engine.loop
        if loop is None:
            return
        row = f"{trigger_id}-{row_id}"  # the delivery's push messageId
        e = loop.ledger.get(trigger_id)
        if e is None or row in e.failed_runs:
            return
        ref = CompletionRef("failed", trigger_id, row, error=f"undeliverable: {error}")
        self.store.journal_many([("complete", at, loop_runtime.ref_to_json(ref), None)])
        self._journal_rows += 1
        self.engine.complete(ref, at)

    def requests(self, now: float) -> list[Fired]:
        """Operator requests (``deadletters redrive``) not applied yet (journaled)."""
        loop, mirror = self.engine.loop, self.mirror
        if loop is None or mirror is None:
            return []
        out: list[Fired] = []
        for req in mirror.new_requests(loop.requests_done):
            self._jbuf.append(("request", now, json.dumps(req), None))
            out.extend(Fired(r.trigger, r.at, r.attempt) for r in loop.request(req, now))
        return out

    def persist(self, fired: list[Fired], now: float, now_dt: datetime) -> list[Committed]:
        """Insert fired triggers into the outbox, stamped ``now``, each with the mode it
        fires in: the engine's for a window (``live`` when a decision joined it while its
        processor fired live, else its processor's now), and for a re-dispatch by the
        ledger (attempt 2 on) the mode of the trigger's first attempt (``live`` when the
        store no longer holds it: the ledger tracks triggers fired live only) -- caller
        holds the transaction. The rows returned start at once; a row in another mode than
        its processor's now is not among them: its lane pages it from the store, with its
        mode (:meth:`take_waiting`)."""
        out: list[Committed] = []
        of, shadow, live = self.modes.of, modes.SHADOW, modes.LIVE
        for f in fired:
            t: Trigger = f.trigger.model_copy(update={"fired_at": now_dt})
            body = trigger_bytes(t)
            now_mode = of(t.processor)
            if f.attempt > 1:
                mode = shadow if self.store.first_mode(t.trigger_id) == shadow else live
            else:
                mode = f.mode or now_mode
            if mode != now_mode:
                self.store.insert_trigger(t.trigger_id, t.processor, body.decode(), now, mode)
                self.waiting.add(t.processor)
                continue
            row = self.store.insert_trigger(t.trigger_id, t.processor, body.decode(), now, mode)
            out.append((row, t, body))
        return out

    def take_waiting(self) -> list[str]:
        """Processors with rows :meth:`persist` left to their lanes' pages, since the last
        call (the dispatcher is told after the commit: ``Dispatcher.rows_waiting``). Called
        on the state thread, in the job whose ``persist`` wrote them (ingest, window timer):
        ``waiting`` is not guarded by a lock."""
        if not self.waiting:
            return []
        out = sorted(self.waiting)
        self.waiting.clear()
        return out

    def fire_due(self, write_marks: Callable[[], None]) -> list[Committed]:
        """One transaction: pending marks, then the windows due now, into the outbox."""
        now = self.clock()
        self.ensure()
        with self.store.transaction():
            write_marks()
            fired = self.persist(self.tick(now), now, datetime.fromtimestamp(now, UTC))
            self.finish_journal()
        self.after_commit()
        return fired

    def finish_journal(self, force_journal: bool = False) -> None:
        """Persist this transaction's engine inputs (caller holds the transaction).

        When no window is open afterwards (typical with zero-length windows) the journal
        rows are not needed: an empty snapshot represents the state exactly. With
        ``force_journal`` (the in-memory engine is not trusted) the rows are always written."""
        buf, self._jbuf = self._jbuf, []
        # _persisted_empty / _journal_rows change only once the transaction has committed
        # (after_commit): after a failed commit the store still holds the old state
        if self.engine.open_count == 0 and not force_journal and not self.loop_on:
            if not self._persisted_empty:
                self.store.save_snapshot(self.engine.snapshot(), self.clock())
                self._on_commit = (True, 0)
            return
        if buf:
            self.store.journal_many(buf)
            self._on_commit = (False, self._journal_rows + len(buf))

    def after_commit(self) -> None:
        """After a state transaction: next window deadline, maybe a snapshot."""
        if self._on_commit is not None:
            self._persisted_empty, self._journal_rows = self._on_commit
            self._on_commit = None
        self.next_deadline = self._deadline()
        self.latest_at = self.book.latest
        loop = self.engine.loop
        if self.mirror is not None:
            self.mirror.committed()
        if loop is not None and self.mirror is not None and loop.version != self._mirrored:
            now = self.clock()
            # at most once a second, and a large ledger's rewrite at most MIRROR_MAX_SHARE of
            # the time: a later commit (the request poll's) writes a skipped change
            if now - self._mirror_at >= self._mirror_every:
                self._mirrored, self._mirror_at = loop.version, now
                self.mirror.save(loop.snapshot())
                took = self.clock() - now
                self._mirror_every = max(
                    loop_runtime.MIRROR_MIN_INTERVAL_S, took / loop_runtime.MIRROR_MAX_SHARE
                )
        try:
            self.compact()
        except Exception:
            logger.exception("window snapshot failed (the journal keeps the state)")

    def take_notices(self) -> list[Any]:
        """The ledger's state changes since the last call (metrics)."""
        loop = self.engine.loop
        if loop is None:
            return []
        out, loop.ledger.notices = loop.ledger.notices, []
        return out

    def _deadline(self) -> float | None:
        """The engine's next deadline; with the loop, at most a request poll away."""
        now = self.clock()
        dl = self.engine.next_deadline(now)
        if self.loop_on:
            poll = now + loop_runtime.REQUEST_POLL_S
            dl = poll if dl is None else min(dl, poll)
        return dl

    def due_at(self, now: float) -> float | None:
        """When the window timer has work, asked at ``now`` (on the event loop: it reads what
        the last commit left): :attr:`next_deadline`, or ``now`` when an open window's last
        decision lies past ``CLOCK_SLACK_S`` ahead of it -- the wall clock was stepped back
        since, and that window is due now (:func:`~scoperouter.router.window_state.is_due`)."""
        if self.latest_at > now + CLOCK_SLACK_S:
            return now
        return self.next_deadline

    # ------------------------------------------------------------------ restore
    def restore(self) -> None:
        """Rebuild the engine from the store: the snapshot, then the journal replayed under
        the registry and the dispatch modes that wrote them (a window a decision joined
        while its processor fired live stays live; a trigger that fired live keeps its
        entry after its processor became shadow: it is still delivered; one that fired in
        shadow opens none after it became live: it is never sent), handed to the current
        ones."""
        self._jbuf = []
        self._on_commit = None
        if self.mirror is not None:  # requests read in a transaction not committed: again
            self.mirror.rolled_back()
        # unknown until the next commit: the next empty book writes its snapshot again
        self._persisted_empty = False
        if self._spec_json is None:
            self._spec_json = replay_spec_json(self.registry)
        # the snapshot and the journal were written under the registry of that time: they
        # are replayed under it (a window whose quiet shrank would otherwise fire during the
        # replay, and the replay's triggers are not sent), then handed to the current one
        written = self.store.get_meta(REGISTRY_META)
        registry = self.registry
        if written is not None and written != self._spec_json:
            try:
                registry = replay_registry(written)
            except Exception:
                logger.exception("the journal's registry no longer loads: replayed as is")
        modes_then = self.store.get_meta(MODES_META)
        modes_now = modes_json(self.modes)
        engine, replayed = rebuild(
            self.registry,
            registry,
            self.store.load_snapshot(),
            ((e.op, e.now, e.event, e.decision) for e in self.store.journal_entries()),
            loop=self.loop_on,
            modes=self.modes,
            written_modes=written_modes(
                modes_then, self.store.get_meta(UNTRACKED_META), self.modes, registry
            ),
        )
        # triggers re-fired by the replay were committed with their journal rows: ignored
        journal_rows = replayed
        if written != self._spec_json or modes_then != modes_now:
            # a snapshot starts the journal of the current registry and dispatch modes
            with self.store.transaction():
                # triggers still waiting in the outbox take the granularities now, as the
                # ledger's re-runs of them did in the hand-over (same full-date ids)
                grains = {n: p.granularity for n, p in self.registry.processors.items()}
                regrained = self.store.regrain_pending(grains)
                self.store.save_snapshot(engine.snapshot(), self.clock())
                self.store.set_meta(REGISTRY_META, self._spec_json)
                self.store.set_meta(MODES_META, modes_now)
            journal_rows = 0
            if regrained:
                logger.info(
                    "%d waiting or dead triggers became full date: their entity ids are of another "
                    "type than their processor's granularity now",
                    regrained,
                    extra={"regrained_triggers": regrained},
                )
        engine.journal = self._journal
        self.engine = engine
        self.next_deadline = self._deadline()
        self.latest_at = engine.book.latest
        self.journal_replayed = replayed
        self.restored_windows = engine.open_count
        self._journal_rows = journal_rows

    def ensure(self) -> None:
        """Rebuild the engine when a failed transaction left it dirty and the rebuild
        itself failed then."""
        if self.stale:
            self.restore()
            self.stale = False

    def compact(self, force: bool = False) -> None:
        """Write a snapshot (and drop the journal) when the journal grew long enough."""
        now = self.clock()
        if not force:
            if self._journal_rows < self.options.compact_every and not (
                self.engine.open_count == 0 and self._journal_rows > 1000
            ):
                return
            if now - self._last_compact < self.options.compact_min_interval_s:
                return
        if self.engine.loop is not None:  # triggers that succeeded over a day ago: forgotten
            self.engine.loop.ledger.forget_closed(now - 86400.0)
        self.store.save_snapshot(self.engine.snapshot(), now)
        self._journal_rows = 0
        self._last_compact = now
        self._persisted_empty = self.engine.open_count == 0
