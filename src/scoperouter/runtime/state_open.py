"""Where the daemon keeps its state, opened with a one-line ConfigError when unusable:
the state dir (one daemon at a time under a directory lock) holding the embedded
per-window SQLite store (:data:`EMBEDDED_STATE`, the default), or the snapshot + journal
store (:data:`OLD_STATE`, only for the closed loop), or a state store elsewhere
(``--state``; a SQLite file there is one daemon's too, under a lock of the file's own);
the one-time import of the old store into a state store named by ``--state`` (the state
dir's two stores hand their work over in :mod:`.state_handover`); and the registry's
``max_entities`` and granularity given to the windows a state store holds
(:func:`limit_windows`).

Invariant: nothing here routes; each function opens, checks or imports state once at start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.runtime.config import redact_url
from scoperouter.runtime.redact import scrub
from scoperouter.runtime.store import Store, SyncMode
from scoperouter.state import StateStore, StoreOptions, open_state_store
from scoperouter.state.merge import registry_durations, registry_limits
from scoperouter.state.sqlite_lock import StoreInUse, flock_within

logger = logging.getLogger("scoperouter.runtime.daemon")

EMBEDDED_STATE = "state.db"  # the per-window SQLite state store: serve's default
OLD_STATE = "state.sqlite3"  # the snapshot + journal store (closed loop; before the upgrade)
IMPORTED_SUFFIX = ".imported"  # the old store once imported (kept for a rollback)


def check_state_dir(state_dir: Path) -> None:
    """Create ``state_dir`` if needed and prove it writable (a probe file), else raise a
    one-line ConfigError naming it: a read-only, missing-parent or non-directory state
    dir is a configuration problem, not a traceback."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / f".write-probe-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok\n")
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([ConfigIssue(f"state dir {state_dir} is not usable: {reason}")]) from None


def open_store(path: Path, sync: SyncMode) -> Store:
    """The state database, or a one-line ConfigError when SQLite cannot use the file."""
    try:
        return Store(path, sync=sync)
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError([ConfigIssue(f"state database {path} is not usable: {exc}")]) from None


def check_emptied_loop_store(state_dir: Path) -> None:
    """Before ``serve`` opens the closed loop's store (:data:`OLD_STATE`): a 0-byte file
    would open as a new, empty store -- an empty ledger, written over ``loop.json`` at the
    first commit. When ``loop.json`` holds ledger entries the store was in use and lost its
    content: a ConfigError naming both files (never started on top of it); otherwise (no
    entries there, or no readable ``loop.json``) a WARNING naming the file, and the start
    goes on with an empty store."""
    from scoperouter.runtime.loop_store import FileLoopState

    path = state_dir / OLD_STATE
    try:
        emptied = path.stat().st_size == 0 and not path.with_name(path.name + "-wal").exists()
    except OSError:
        return  # absent (a first start) or unreadable: opening it says so
    if not emptied:
        return
    try:
        snap = FileLoopState(state_dir).load()
    except ValueError:
        snap = None
    ledger = snap.get("ledger") if snap is not None else None
    entries = ledger.get("entries") if isinstance(ledger, dict) else None
    n = len(entries) if isinstance(entries, list) else 0
    if n:
        loop_json = state_dir / "loop.json"
        raise ConfigError(
            [
                ConfigIssue(
                    f"state database {path} is not usable: the file is empty (0 bytes) but "
                    f"{loop_json} holds {n} ledger entries, so the store was in use and lost "
                    "its content; restore it from a backup, or move both files away to start "
                    "with an empty ledger"
                )
            ]
        )
    logger.warning(
        "state database %s is empty (0 bytes): starting with an empty store", path,
        extra={"state": str(path)},
    )  # fmt: skip


def open_embedded_state(
    path: Path,
    options: StoreOptions,
    sync: SyncMode,
    *,
    exclusive: bool = False,
    lock_timeout_s: float = 0.0,
) -> StateStore:
    """The per-window SQLite store at ``path`` (migrated), or a one-line ConfigError.
    ``exclusive`` (the daemon): the file's instance lock, held until the store is closed
    (:mod:`scoperouter.state.sqlite_lock`); another daemon holding it for ``lock_timeout_s``
    is a ConfigError naming the file and that daemon. The offline commands leave it off."""
    return _open(path, options, sync, exclusive, lock_timeout_s, f"state database {path}", str)


def default_replica_id() -> str:
    """A name for this replica in trigger leases: host, pid and a random suffix (a
    restarted process never takes over the leases of the one it replaces)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def open_shared_state(
    location: str,
    options: StoreOptions,
    sync: SyncMode,
    *,
    exclusive: bool = False,
    lock_timeout_s: float = 0.0,
) -> StateStore:
    """The state store at ``location`` with its schema migrated (idempotent, versioned),
    or a one-line ConfigError (server down, bad DSN, psycopg missing, newer schema, a
    SQLite file another daemon holds: ``exclusive`` as :func:`open_embedded_state`)."""
    # the driver's message may quote the DSN or a piece of it (libpq: an invalid
    # percent-encoded token, a malformed URI): its credentials are masked there too
    return _open(
        location,
        options,
        sync,
        exclusive,
        lock_timeout_s,
        f"state store {redact_url(location)}",
        lambda exc: scrub(str(exc), location),
    )


def _open(
    location: str | Path,
    options: StoreOptions,
    sync: SyncMode,
    exclusive: bool,
    lock_timeout_s: float,
    name: str,
    detail: Callable[[Exception], str],
) -> StateStore:
    """:func:`open_state_store`, its failures as one-line ConfigErrors: another daemon's
    lock as it is (:class:`StoreInUse` names the file, no credentials), anything else as
    ``<name> is not usable: <detail(exc)>``."""
    try:
        return open_state_store(
            location, options, sync=sync, exclusive=exclusive, lock_timeout_s=lock_timeout_s
        )
    except StoreInUse as exc:
        raise ConfigError([ConfigIssue(str(exc))]) from None
    except Exception as exc:
        raise ConfigError([ConfigIssue(f"{name} is not usable: {detail(exc)}")]) from None


def import_old_state(store: StateStore, old: Path, registry: CompiledRegistry) -> bool:
    """``serve --state``: the snapshot + journal store found at ``old``
    (``<state_dir>/state.sqlite3``) is imported -- open windows, seen ids, pending
    triggers, dead triggers and letters (:mod:`scoperouter.state.legacy`) -- when ``store``
    is still empty (else nothing changes, so this runs at every start; what ``old`` still
    holds then is named in a WARNING). ``old`` stays where it is. Returns True when it
    imported. (serve's own state dir: :func:`.state_handover.take_old_state`.)"""
    if not old.exists():
        return False
    from scoperouter.state.legacy import read_legacy

    try:
        state = read_legacy(old, registry)
        done = store.import_legacy(state, time.time())
    except Exception as exc:
        why = f"old state database {old} is not usable: could not import it ({exc})"
        raise ConfigError([ConfigIssue(why)]) from None
    counts = {"windows": len(state.windows), "pending": len(state.pending)}
    if done:
        logger.warning(
            "imported the old state store %s: %d open windows, %d pending triggers",
            old,
            counts["windows"],
            counts["pending"],
            extra=counts,
        )
    elif state.windows or state.pending:
        # never silent: what the old store still holds is not routed from here
        logger.warning(
            "old state store %s not imported (the state store already holds state): its "
            "%d open windows and %d pending triggers are not routed from it; move it away "
            "once they are known to be handled",
            old,
            counts["windows"],
            counts["pending"],
            extra=counts,
        )
    return done


def limit_windows(store: StateStore, registry: CompiledRegistry) -> int:
    """At a router's start on ``store`` (its state thread): every open window takes its
    processor's ``max_entities``, granularity and ``quiet`` / ``max_wait`` in ``registry``
    -- a restart may bring a routes.yaml that changed them -- so that one holding more ids
    than the limit, or ids of another type than the granularity, fires at full date
    (``fallback_threshold``; ``date_granularity`` or ``unmapped_entity_type``) even when no
    event joins it before it fires (an event that joins merges under the registry's rules
    anyway), and every one is due under the durations now, as the snapshot + journal
    store's windows are; and every trigger waiting (or dead) in the outbox whose ids its processor
    no longer takes becomes full date (``StateStore.regrain_pending``). Logged when it
    changed windows or triggers; returns how many windows."""
    spans, default_spans = registry_durations(registry)
    n = store.apply_limits(
        *registry_limits(registry), durations=spans, default_durations=default_spans
    )
    grains = {name: p.granularity for name, p in registry.processors.items()}
    sent = store.regrain_pending(grains)
    if sent:
        logger.info(
            "%d waiting or dead triggers became full date: their entity ids are of another type "
            "than their processor's granularity now (a rollback to granularity: date)",
            sent,
            extra={"regrained_triggers": sent},
        )
    if n:
        logger.info(
            "%d open windows took the registry's max_entities, granularity and window "
            "durations (those past the limit or holding ids of another type: full date; "
            "deadlines from the quiet and max_wait now)",
            n,
            extra={"relimited_windows": n},
        )
    return n


def acquire_state_lock(state_dir: Path, timeout_s: float) -> int:
    """Exclusive lock on the state dir itself (``flock`` on the directory), so two daemons
    never share one state dir (e.g. the overlap of a rolling deploy): the newcomer waits up
    to ``timeout_s`` for the old one to exit, then fails with a ConfigError. The kernel
    drops the lock if the holder dies, so a crash never leaves it stale. Locking the
    directory rather than a file in it means deleting files (``LOCK`` included) cannot
    let a second daemon in; ``<state-dir>/LOCK`` still names the holder (pid and host), which
    the newcomer's error repeats."""
    fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    if not flock_within(fd, timeout_s):
        os.close(fd)
        other = ""
        with contextlib.suppress(OSError, UnicodeDecodeError):
            other = " ".join((state_dir / "LOCK").read_text(encoding="utf-8").split())[:200]
        raise ConfigError(
            [
                ConfigIssue(
                    f"state dir {state_dir} is in use by another scoperouter "
                    f"({other or 'holder unknown'}; {state_dir / 'LOCK'})"
                )
            ]
        )
    with contextlib.suppress(OSError):
        (state_dir / "LOCK").write_text(
            f"pid {os.getpid()} on {socket.gethostname()}\n", encoding="utf-8"
        )
    return fd


def release_state_lock(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
