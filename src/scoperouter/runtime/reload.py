"""Hot reload of relation data (rosters, schedules) while the daemon runs.

The registry itself is fixed for the life of the process; only the relation CSV files
(``<relation_data.csv.dir>/<relation>.csv`` per base relation) are re-read, when the
modification time, size, inode or change time of a watched file changes (polled every
``interval_s``; 0 disables polling) or on request (SIGHUP, or files changed while the daemon
started; requests arriving before a requested reload starts reading join it; a request is
ignored once the reloader is stopped, during a graceful stop). Either
way the files are read once they stayed unchanged for ``settle_s`` (a request waits up to
``_MAX_REQUEST_WAIT_S`` for that). That settle wait only catches a writer pausing for
less: only an atomic replace (a temporary file renamed over the old one) or a ready file is
safe against a writer rewriting a file in place; a file cut mid-row (no final newline) is
refused. The watched files are the CSVs, or only ``relation_data.csv.ready_file`` when the
registry names one (:func:`~scoperouter.processor_registry.loader.relation_watch_paths`):
its writer touches it once every CSV is in place, so files replaced one by one are never
loaded half old, half new; a ready file that does not exist means "not ready" (a writer may
remove it while it rewrites the CSVs): neither the poller nor a start-up check reloads
until it exists again (SIGHUP reads the CSVs as they are). Loading runs on a worker thread, never on the event loop; the
router then swaps its ``relations`` reference whole, so each batch is planned with one
consistent view.
A reload that fails (e.g. a bad CSV row) keeps the data in use, logs an ERROR naming
file:line and counts ``scoperouter_relation_reloads_total{result="error"}``. What loading
warns about (ids differing only by case) is logged as a WARNING naming file:line, at start-up
(``serve``) and after every reload, unless the registry's ``validate: {ignore: [...]}``
silences its code; the data is used all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from scoperouter.errors import ConfigError
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import (
    load_relations,
    relation_csv_paths,
    relation_watch_paths,
)
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.router import Router

logger = logging.getLogger("scoperouter.runtime.reload")

# (path, st_mtime_ns, st_size, st_ino, st_ctime_ns) per file, sorted by path; -1 for each
# number of a missing file
Fingerprint = tuple[tuple[str, int, int, int, int], ...]
RelationLoader = Callable[[CompiledRegistry], RelationStore]
Sleep = Callable[[float], Awaitable[None]]

_MAX_SETTLE_S = 1.0  # how long the watched files must stay unchanged before a reload reads them
_MAX_REQUEST_WAIT_S = 30.0  # a requested reload gives up on files still changing after this


def log_relation_warnings(registry: CompiledRegistry, relations: RelationStore, when: str) -> None:
    """A WARNING per finding the loaded relation data carries (ids of one entity type
    differing only by case: ``relation_id_case``; a file mixing dated and undated rows:
    ``relation_mixed_dates``; an ``every_day`` relation missing days inside its span:
    ``relation_missing_days``; a latest date far after the rest: ``relation_isolated_date``;
    each naming file:line), at start-up and after
    every reload: ``serve`` never runs ``validate``, so its log is where they show. A code
    in the registry's ``validate: {ignore: [...]}`` is silenced here too, as in ``validate``."""
    ignored = frozenset(registry.spec.validate_.ignore)
    for w in getattr(relations, "warnings", ()):
        if w.code not in ignored:
            logger.warning("relation data: %s", w.format(), extra={"code": w.code, "when": when})


def relation_fingerprint(paths: Iterable[Path]) -> Fingerprint:
    """Modification time, size, inode and change time of every file (blocking: call from a
    thread). The inode and ctime see a file replaced by one of the same size whose mtime was
    kept (``cp -p``, ``rsync -t``, ``tar x``: a rename gives a new inode, ``utime`` a new
    ctime)."""
    out: list[tuple[str, int, int, int, int]] = []
    for p in sorted(paths):
        try:
            st = p.stat()
        except OSError:
            out.append((str(p), -1, -1, -1, -1))
        else:
            out.append((str(p), st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns))
    return tuple(out)


def data_timestamp(fingerprint: Fingerprint) -> float | None:
    """The newest modification time (Unix seconds) among the files that exist."""
    stamps = [f[1] for f in fingerprint if f[1] >= 0]
    return max(stamps) / 1e9 if stamps else None


class RelationReloader:
    """Watches the relation files of ``registry`` and feeds new data to ``router``.

    ``fingerprint`` describes the watched files as they were *before* the data the router
    holds was read (so a change landing during that read is seen); None = stat them at
    start. ``read``: the CSVs stat-ed with it, what the timestamp gauges show until a reload
    succeeds (None: ``fingerprint`` when it is of the CSVs, else the CSVs at start)."""

    def __init__(
        self,
        registry: CompiledRegistry,
        router: Router,
        metrics: Metrics,
        *,
        interval_s: float,
        fingerprint: Fingerprint | None = None,
        read: Fingerprint | None = None,
        loader: RelationLoader = load_relations,
        on_swap: Callable[[], None] | None = None,
        settle_s: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """``on_swap`` runs on the event loop right after the router got new data.
        ``settle_s``: how long the watched files must stay unchanged before a poll or a
        request reads them (default ``min(1 s, interval_s / 2)``, 1 s with polling off; 0:
        no wait); ``sleep`` is awaited for each such wait (tests inject one)."""
        if interval_s < 0:
            raise ValueError(f"relations refresh interval must be >= 0, got {interval_s}")
        if settle_s is None:
            settle_s = min(_MAX_SETTLE_S, interval_s / 2) if interval_s > 0 else _MAX_SETTLE_S
        if settle_s < 0:
            raise ValueError(f"relations settle wait must be >= 0, got {settle_s}")
        self.settle_s = settle_s
        self.sleep = sleep
        self.registry = registry
        self.router = router
        self.metrics = metrics
        self.interval_s = interval_s
        self.paths = tuple(relation_csv_paths(registry).values())  # what a reload reads
        self.watched = relation_watch_paths(registry)  # what decides that it reloads
        self.loader = loader
        self.on_swap = on_swap
        self.fingerprint = fingerprint  # of the files behind the router's current data
        self._read_at_start = read
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[bool]] = set()
        # the requested reload that has not started reading yet: later requests join it
        self._queued: asyncio.Task[bool] | None = None
        self._queued_when_ready = False
        self._stopped = False  # stop() ran: requests are ignored (a SIGHUP during shutdown)

    @property
    def polling(self) -> bool:
        return self._poller is not None and not self._poller.done()

    async def start(self) -> None:
        """Record the current files and start polling (unless the interval is 0); reload
        at once when the files changed since ``fingerprint`` (the data the router holds)."""
        if not self.paths:
            return
        now, read = await asyncio.to_thread(self._stat_files)
        if self.fingerprint is None:
            self.fingerprint = now
        else:
            # the gauges show the CSVs as they were read, not a file replaced since (one
            # the reload below fails on, or one whose ready file was not touched yet)
            if self._read_at_start is not None:
                read = self._read_at_start
            elif self.watched == self.paths:
                read = self.fingerprint
            if now != self.fingerprint and self._ready(now):
                # files changed since they were read for the router (while the daemon
                # started, when a SIGHUP is still ignored): load them now, polling or not
                self.request_reload("changed during start-up", when_ready=True)
        self._set_timestamps(read)
        if self.interval_s > 0:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name="relations-reload"
            )
            logger.info(
                "watching relation data for changes",
                extra={
                    "files": len(self.paths),
                    "watched": [str(w) for w in self.watched],
                    "interval_s": self.interval_s,
                },
            )
            ready = [w for w in self.watched if w not in self.paths]
            missing = await asyncio.to_thread(lambda: [str(w) for w in ready if not w.exists()])
            if missing:  # a misnamed ready file never appears: no reload, ever
                logger.warning(
                    "relation_data.csv.ready_file %s does not exist: relation data is reloaded "
                    "only once it appears or changes -- check that the job writing the files "
                    "touches this name",
                    ", ".join(missing),
                    extra={"code": "ready_file_missing", "watched": missing},
                )
            if self.watched == self.paths:  # no relation_data.csv.ready_file
                logger.warning(
                    "relation files polled without relation_data.csv.ready_file: a file its "
                    "writer rewrites in place, pausing longer than %.1f s between rows, is "
                    "loaded half-written; replace each file atomically (write a temporary "
                    "file, then rename it over the old one) or name a ready_file touched once "
                    "every file is written (deploy/README.md, 'Relation data: hot reload')",
                    self.settle_s,
                    extra={
                        "code": "polled_without_ready_file",
                        "interval_s": self.interval_s,
                        "settle_s": self.settle_s,
                    },
                )

    async def stop(self) -> None:
        """Cancel the poller and the reloads under way; later requests are ignored."""
        self._stopped = True
        tasks = [t for t in (self._poller, *self._requests) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._poller = None
        self._requests.clear()

    def request_reload(self, reason: str = "signal", *, when_ready: bool = False) -> None:
        """Schedule a reload, read once the files stay unchanged (:meth:`_requested`; the
        SIGHUP handler, runs on the event loop). ``when_ready``: not while the ready file is
        missing (a change found at start-up; a SIGHUP reads the CSVs as they are). Ignored
        once :meth:`stop` ran: the daemon is shutting down (its handler stays installed until
        ``run_forever`` returns), and a reload started then would outlive the stop.

        Requests coalesce: one arriving while a requested reload has not started reading
        the files yet joins it (that reload reads them after this request), so a burst of
        SIGHUPs during a reload makes one follow-up reload, not a parse (and a heap
        re-freeze) each."""
        if self._stopped:
            logger.info("relation reload request ignored: shutting down", extra={"reason": reason})
            return
        if self._queued is not None and not self._queued.done():
            self._queued_when_ready = self._queued_when_ready and when_ready
            logger.debug("relation reload request joins the one queued", extra={"reason": reason})
            return
        self._queued_when_ready = when_ready
        task = asyncio.get_running_loop().create_task(
            self._requested(reason), name="relations-reload-now"
        )
        self._queued = task
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    def _dequeue(self) -> None:
        """The running request starts reading (or gives up): later requests queue anew."""
        if self._queued is asyncio.current_task():
            self._queued = None

    async def _requested(self, reason: str) -> bool:
        """:meth:`_requested_queued`, no longer the queued request once it ends."""
        try:
            return await self._requested_queued(reason)
        finally:
            self._dequeue()

    async def _requested_queued(self, reason: str) -> bool:
        """A reload asked for (SIGHUP, files changed during start-up): once the watched
        files stayed unchanged for ``settle_s`` -- a writer rewriting a file in place and
        pausing for less is not read half-way. Files still changing after
        ``_MAX_REQUEST_WAIT_S`` keep the old data (ERROR, error counted); the poller, if on,
        loads them once they settle. Made ``when_ready`` (and joined by no request without
        it): nothing is read if the ready file is missing once they settled (the poller
        loads them once it is back)."""
        settled = await self._settled(await self._stat(), _MAX_REQUEST_WAIT_S)
        if settled is not None and self._queued_when_ready and not self._ready(settled):
            logger.info("relation_data.csv.ready_file removed: not reloaded until it is back")
            return False
        if settled is None:
            self.metrics.relation_reloads.labels("error").inc()
            logger.error(
                "relation files still changing after %.0f s: not reloaded, keeping the "
                "previous data (%s)",
                max(_MAX_REQUEST_WAIT_S, self.settle_s),
                "the poller loads them once they stay unchanged"
                if self.polling
                else "send SIGHUP again once their writer is done",
                extra={"reason": reason, "watched": [str(w) for w in self.watched]},
            )
            return False
        return await self.reload(reason, on_start=self._dequeue)

    async def reload(
        self, reason: str = "manual", *, on_start: Callable[[], None] | None = None
    ) -> bool:
        """Read the relation files now (no settle wait: :meth:`request_reload` and the
        poller wait until the files stay unchanged) and hand them to the router. False (old
        data kept, ERROR logged, error counted) when they cannot be loaded. ``on_start``
        runs once the read begins (after any reload under way)."""
        if not self.paths:
            logger.warning("no relation_data in the registry: nothing to reload")
            return False
        async with self._lock:
            if on_start is not None:
                on_start()
            t0 = time.monotonic()
            # stat before reading: a write landing during the read changes the files
            # again after this fingerprint, so the next poll reloads once more
            fp, read = await asyncio.to_thread(self._stat_files)
            try:
                relations = await asyncio.to_thread(self.loader, self.registry)
            except Exception as exc:
                # remember the broken files: the poller retries when they change again,
                # not every interval (SIGHUP always retries)
                self.fingerprint = fp
                self.metrics.relation_reloads.labels("error").inc()
                detail = (
                    str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
                )
                logger.error(
                    "relation data reload failed; keeping the previous data: %s",
                    detail,
                    extra={"reason": reason},
                    exc_info=not isinstance(exc, ConfigError),
                )
                return False
            self.router.set_relations(relations)
            log_relation_warnings(self.registry, relations, "reload")
            if self.on_swap is not None:
                self.on_swap()
            self.fingerprint = fp
            self.metrics.relation_reloads.labels("ok").inc()
            self._set_timestamps(read)
            logger.info(
                "relation data reloaded",
                extra={
                    "reason": reason,
                    "seconds": round(time.monotonic() - t0, 3),
                    "data_timestamp": data_timestamp(read),
                },
            )
            return True

    def _stat_files(self) -> tuple[Fingerprint, Fingerprint]:
        """(the watched files, the CSVs read): the same with no ready_file (blocking)."""
        watched = relation_fingerprint(self.watched)
        return watched, watched if self.watched == self.paths else relation_fingerprint(self.paths)

    def _set_timestamps(self, read: Fingerprint) -> None:
        """The timestamp gauges from the CSVs read (never from a ready_file: absent, it
        said 0, i.e. data 55 years old): one per file, and the newest of them."""
        for path, mtime_ns, *_ in read:
            if mtime_ns >= 0:  # (gone since it was read: its gauge keeps the figure it had)
                self.metrics.relation_file_timestamp.labels(Path(path).name).set(mtime_ns / 1e9)
        ts = data_timestamp(read)
        if ts is not None:
            self.metrics.relations_loaded_timestamp.set(ts)

    def _ready(self, watched: Fingerprint) -> bool:
        """False when the registry names a ready_file and ``watched`` finds it missing:
        its writer is at the CSVs (no ready file, no reload)."""
        return self.watched == self.paths or all(f[1] >= 0 for f in watched)

    async def _stat(self) -> Fingerprint:
        return await asyncio.to_thread(relation_fingerprint, self.watched)

    async def _settled(self, fp: Fingerprint, max_wait_s: float) -> Fingerprint | None:
        """``fp`` once a stat ``settle_s`` later finds the watched files unchanged (a stat
        that does not becomes the new ``fp``); None when they still changed at the last
        stat after ``max_wait_s`` (at least one wait). ``settle_s`` 0: ``fp`` at once."""
        waited = 0.0
        while self.settle_s > 0:
            await self.sleep(self.settle_s)
            waited += self.settle_s
            now = await self._stat()
            if now == fp:
                break
            if waited >= max_wait_s:
                return None
            fp = now
        return fp

    async def _poll(self) -> None:
        # a file seen changing is read once it stayed unchanged for settle_s (one wait per
        # poll; still changing: the next poll looks again). This only catches a writer
        # pausing for less than settle_s: one that rewrites a file in place and pauses
        # longer between whole rows is loaded half-written. Only an atomic replace (write a
        # temporary file, then rename it over the old one) or relation_data.csv.ready_file
        # is safe against that (deploy/README.md); a file cut mid-row is refused (no final
        # newline: relation_csv.py).
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                fp = await self._stat()
                if fp == self.fingerprint or not self._ready(fp):
                    continue  # (a missing ready file: not ready, whatever it was before)
                settled = await self._settled(fp, self.settle_s)
                if settled is None or not self._ready(settled):
                    logger.debug("relation files still changing: looking again at next poll")
                    continue
                await self.reload("changed")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("relation data poll failed")
