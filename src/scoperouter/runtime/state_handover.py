"""serve's two stores in one state dir, and the work one hands over to the other at start.

Without ``--state``, ``serve`` keeps its state in the state dir: in the per-window SQLite
store ``state.db`` (:data:`~.state_open.EMBEDDED_STATE`), or -- when routes.yaml configures
the closed loop (``run_retries``, ``completion_timeout``, ``retry_backoff`` or ``barrier``:
the ledger and the windows held at a barrier live in the window snapshot only) -- in the
snapshot + journal store ``state.sqlite3`` (:data:`~.state_open.OLD_STATE`, also the store
of the versions before the per-window one). Turning the loop on or off across a restart
switches the store; the one not opened this time hands its work over to the one opened,
before anything routes: :func:`carry_into_loop_store` (loop on) and :func:`take_old_state`
(loop off, or the first start after an upgrade).

Invariant: nothing a stopped daemon acked stays behind in the store not opened. At start
the other store is read; when it holds unfinished work (open or held windows, triggers to
send, a ledger waiting on completions: :attr:`~scoperouter.state.legacy.LegacyState.unfinished`)
all of its work goes into the store opened, in one transaction -- windows joined to those of
their key (:func:`~scoperouter.router.window_state.join_windows`), triggers pending with their
attempts, mode and due time (a re-dispatch the ledger scheduled too), dead triggers with their
dead letter (a trigger the ledger dead-lettered too), the other dead letters, seen ids with
their time -- and then the other store lets go of it: ``state.db`` is drained in place (its
windows, rows not done and dead letters deleted), ``state.sqlite3`` renamed
``state.sqlite3.imported`` (``.imported.2``... when that name is taken), so nothing is carried
twice. A start that died between the two steps carries the same work again, which writes
nothing twice (windows equal, triggers by id, letters by ref). What has no place in the store
opened is counted in the WARNING that reports the carry: the triggers the loop waits on for a
completion (delivered; without the loop nothing waits for completions). A failed carry is a
ConfigError naming the counts and what to do; an empty or fully drained other store is left
as it is, without a word.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.window_state import join_windows, window_from_json, window_to_json
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.state_open import (
    EMBEDDED_STATE,
    IMPORTED_SUFFIX,
    open_embedded_state,
)
from scoperouter.runtime.store import Store, SyncMode
from scoperouter.state import StoreOptions
from scoperouter.state.legacy import Carried, LegacyState, read_legacy
from scoperouter.state.merge import book_window
from scoperouter.state.model import WindowState
from scoperouter.state.sqlite import SqliteStateStore

logger = logging.getLogger("scoperouter.runtime.daemon")

T = TypeVar("T")
LOOP_ON = "the closed loop was turned on"
LOOP_OFF = "the closed loop is off"


def carry_into_loop_store(
    store: Store,
    registry: CompiledRegistry,
    options: StoreOptions,
    sync: SyncMode,
    *,
    shadow: bool = False,
    lock_timeout_s: float = 0.0,
) -> Carried | None:
    """The closed loop turned on: the unfinished work of ``state.db`` beside ``store``
    (``state.sqlite3``) goes into ``store`` -- its windows into the window snapshot (the
    journal replayed first, then dropped with it), its rows by
    :meth:`~scoperouter.runtime.store.Store.carry_rows` -- then ``state.db`` is drained.
    ``state.db`` is opened under its instance lock (``lock_timeout_s``: a daemon with
    ``--state sqlite:///`` on it keeps it). None when nothing was carried."""
    path = store.path.parent / EMBEDDED_STATE
    if not _holds_data(path):
        return None
    other = open_embedded_state(path, options, sync, exclusive=True, lock_timeout_s=lock_timeout_s)
    try:
        assert isinstance(other, SqliteStateStore)
        # most starts find it drained (seen ids and done rows only): asked cheaply first,
        # not by reading every seen id of the dedupe horizon at each start
        if not _read(path, other.has_unfinished):
            return None
        state = _read(path, other.export_state)
        if not state.unfinished:
            return None
        carried = _carry(
            path, store.path, state, LOOP_ON, lambda: _into(store, registry, state, shadow)
        )
        try:
            other.drain()
        except Exception as exc:
            raise ConfigError(
                [
                    ConfigIssue(
                        f"{LOOP_ON}: the work of {path} is in {store.path} now, but "
                        f"{path.name} could not be drained ({exc}); the next start carries "
                        "it again, which writes nothing twice"
                    )
                ]
            ) from None
    finally:
        other.close()
    _report(path, store.path, state, carried, LOOP_ON, f"{path.name} drained")
    return carried


def take_old_state(
    store: SqliteStateStore, old: Path, registry: CompiledRegistry
) -> Carried | None:
    """serve's state dir on the per-window store ``store`` (``state.db``): the snapshot +
    journal store ``old`` (``state.sqlite3``) beside it -- an older version's, or the
    closed loop's, turned off now -- is imported when ``store`` is empty, else its
    unfinished work is carried over into it (:meth:`SqliteStateStore.carry_over`); either
    way ``old`` is renamed then (its WAL folded in first), so it is never read again. An
    ``old`` with nothing unfinished beside a store in use is left as it is. None when
    nothing was taken."""
    if not _holds_data(old):
        return None
    state = _read(old, lambda: read_legacy(old, registry))
    if state.empty:
        return None
    now = time.time()
    imported = _carry(old, store.path, state, LOOP_OFF, lambda: store.import_legacy(state, now))
    if imported:
        n = state.counts()
        carried = Carried(n["windows"], 0, n["pending"], n["dead"], len(state.dead_letters),
                          n["seen"])  # fmt: skip
        how = "imported the old state store"
    elif state.unfinished:
        carried = _carry(old, store.path, state, LOOP_OFF, lambda: store.carry_over(state, now))
        how = LOOP_OFF
    else:
        return None
    try:
        renamed = retire(old)
    except OSError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    f"{how}: the work of {old} is in {store.path} now, but {old.name} could "
                    f"not be renamed ({exc}): move it away by hand (a start with it in place "
                    "carries it again, which writes nothing twice)"
                )
            ]
        ) from None
    _report(old, store.path, state, carried, how, f"renamed {renamed.name}")
    return carried


def retire(old: Path) -> Path:
    """Fold ``old``'s WAL into it (the file then stands alone) and rename it
    ``<name>.imported`` -- ``.imported.2``, ``.3``... when taken (an earlier copy is kept
    for a rollback) --; the new path."""
    db = sqlite3.connect(str(old), isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=DELETE")  # checkpoints and removes -wal / -shm
    finally:
        db.close()
    target, n = old.with_name(old.name + IMPORTED_SUFFIX), 2
    while target.exists():
        target, n = old.with_name(f"{old.name}{IMPORTED_SUFFIX}.{n}"), n + 1
    old.rename(target)
    return target


def _holds_data(path: Path) -> bool:
    """True when ``path`` is a database file with content (an empty file is no store)."""
    return path.is_file() and (
        path.stat().st_size > 0 or path.with_name(path.name + "-wal").is_file()
    )


def _into(store: Store, registry: CompiledRegistry, state: LegacyState, shadow: bool) -> Carried:
    """``state`` into the snapshot + journal ``store``: its engine rebuilt as the router
    will rebuild it (:meth:`DurableWindows.restore`), the windows put in (joined to one of
    their key, open or held at a barrier), and the snapshot of that engine written in the
    transaction of the rows."""
    now = time.time()
    windows = DurableWindows(registry, store, RouterOptions(shadow=shadow), lambda: now)
    windows.restore()
    joined = _put(windows.engine, state.windows)
    with store.transaction():
        store.save_snapshot(windows.engine.snapshot(), now)
        rows = store.carry_rows(state, now)
    return Carried(len(state.windows), joined, *rows)


def _put(engine: RoutingEngine, windows: tuple[WindowState, ...]) -> int:
    """Put ``windows`` into ``engine``'s book, each under the registry's durations and
    threshold now (as a snapshot restores them), joined to the window of its key the book
    holds, or else the barrier; how many were joined."""
    book = engine.book
    held = engine.loop.barrier.held if engine.loop is not None else {}
    joined = 0
    for w in windows:
        new = window_from_json(window_to_json(book_window(w)), book.params(w.processor))
        key = (w.processor, w.day)
        have, h = book.get(key), held.get(key)
        if have is not None:
            book.put(join_windows(have, new))
        elif h is not None:
            held[key] = h._replace(window=join_windows(h.window, new))
        else:
            book.put(new)
            continue
        joined += 1
    return joined


def _read(path: Path, read: Callable[[], T]) -> T:
    """``read()``, any failure a ConfigError naming ``path``."""
    try:
        return read()
    except Exception as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    f"state database {path} is not usable: could not read it to carry its "
                    f"work over ({exc})"
                )
            ]
        ) from None


def _carry(src: Path, dst: Path, state: LegacyState, why: str, write: Callable[[], T]) -> T:
    """``write()``, a failure a ConfigError naming what ``src`` holds and what to do."""
    try:
        return write()
    except Exception as exc:
        held = ", ".join(f"{n} {k}" for k, n in state.counts().items() if n)
        raise ConfigError(
            [
                ConfigIssue(
                    f"{why}: {src} holds unfinished work ({held}) that could not be carried "
                    f"into {dst} ({exc}); start once more with the routes.yaml that used "
                    f"{src.name} to let it drain, or move {src.name} away to give its work up"
                )
            ]
        ) from None


def _report(
    src: Path, dst: Path, state: LegacyState, carried: Carried, how: str, after: str
) -> None:
    """One line, a WARNING when unfinished work moved (else INFO): what ``src`` handed
    over to ``dst``, and what it could not."""
    counts = {
        "windows": carried.windows,
        "joined_windows": carried.joined,
        "pending": carried.pending,
        "dead": carried.dead,
        "dead_letters": carried.letters,
        "seen": carried.seen,
        "known": carried.known,
        "awaiting": state.awaiting,
    }
    untracked = (
        f"; the closed loop no longer waits on the completions of {state.awaiting} triggers "
        "it sent (they are not re-run on a failure or timeout)"
        if state.awaiting
        else ""
    )
    logger.log(
        logging.WARNING if state.unfinished else logging.INFO,
        "%s: carried the work of %s into %s: %d open windows (%d joined to one of their "
        "key), %d triggers to send, %d dead triggers, %d other dead letters, %d seen ids "
        "(%d triggers it held already)%s; %s",
        how,
        src,
        dst,
        carried.windows,
        carried.joined,
        carried.pending,
        carried.dead,
        carried.letters,
        carried.seen,
        carried.known,
        untracked,
        after,
        extra={"carried_from": str(src), "carried_into": str(dst), **counts},
    )
