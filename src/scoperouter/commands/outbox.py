"""``scoperouter outbox [list|redrive|discard] [--state-dir D | --state LOC] [--processor P]``.

The dispatch outbox's dead triggers (past their target's ``retry_horizon``, over
``max_attempts``, or refused for good; ``deadletters`` is the closed loop's ledger) are
kept until an operator acts: ``redrive`` makes them pending again (fresh
attempt count and horizon; a running daemon picks them up within
``dispatch_page_interval`` x 60 -- a replica on a shared store within a few seconds --, a
stopped one at its next start), ``discard`` deletes them and their dead letters. ``list``
prints one JSON object per dead letter (payloads left out). An empty ``--processor`` (an
unset shell variable) is a usage error (exit 2): it never reads as every processor.

Where: ``--state`` names a state store (``postgresql://...``, ``sqlite:///path``, as
``serve --state``); else the stores in ``--state-dir``: the per-window store
(``state.db``, serve's default) and the snapshot + journal store (``state.sqlite3``, the
closed loop's), each one present. A SQLite ``--state`` (``sqlite:///path`` or a path) must
name a file that is there, as ``--state-dir`` must hold a store: this command never
creates one (a typo would list or redrive an empty store, and report success), nor
initialises a file that is there: a ``state.sqlite3`` that is empty, not SQLite, damaged
or holds no outbox is one line, ``state database PATH is not usable: ...`` (exit 1).

Invariant: only dead trigger rows and their ``trigger`` dead letters change, in one
transaction per store; SQLite's busy timeout makes it safe next to a running daemon (it
opens the store without the daemon's instance lock, :mod:`scoperouter.state.sqlite_lock`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from scoperouter.commands import nonempty
from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.runtime.state_open import (
    EMBEDDED_STATE,
    OLD_STATE,
    open_embedded_state,
    open_shared_state,
    open_store,
)
from scoperouter.state import KEYWORD_DSN_REFUSED, StoreOptions, is_keyword_dsn, sqlite_path

OPTIONS = StoreOptions(owner="scoperouter-outbox")  # this command leases nothing


class _Outbox(Protocol):
    """What this command needs of a store (the state store's or the old one's methods)."""

    def dead_letters(self) -> Sequence[Any]: ...

    def redrive_dead(self, now: float, processor: str | None = None) -> int: ...

    def discard_dead(self, processor: str | None = None) -> int: ...

    def close(self) -> None: ...


class _OldOutbox:
    """The snapshot + journal store: its redrive/discard need the caller's transaction."""

    def __init__(self, path: Path) -> None:
        _check_old_store(path)
        self.store = open_store(path, "full")

    def dead_letters(self) -> Sequence[Any]:
        return self.store.dead_letters()

    def redrive_dead(self, now: float, processor: str | None = None) -> int:
        with self.store.transaction():
            return self.store.redrive_dead(now, processor)

    def discard_dead(self, processor: str | None = None) -> int:
        with self.store.transaction():
            return self.store.discard_dead(processor)

    def close(self) -> None:
        self.store.close()


def _check_old_store(path: Path) -> None:
    """A ConfigError ``state database PATH is not usable: ...`` unless ``path`` is a
    SQLite database holding an outbox: opening anything else as a :class:`Store` would
    create its tables there (an empty file, another program's database), and this command
    never creates or initialises a store."""
    import sqlite3

    def unusable(why: object) -> ConfigError:
        return ConfigError([ConfigIssue(f"state database {path} is not usable: {why}")])

    wal = path.with_name(path.name + "-wal")
    if path.stat().st_size == 0 and not wal.is_file():
        raise unusable("the file is empty (0 bytes), not a state store")
    try:
        db = sqlite3.connect(str(path))
        try:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'triggers'"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise unusable(exc) from None
    if found is None:
        raise unusable("it holds no outbox (not a scoperouter state store)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="list, redrive or discard dead triggers of the outbox")
    p.add_argument("action", choices=("list", "redrive", "discard"), nargs="?", default="list")
    p.add_argument("--state-dir", type=Path, default=Path(".scoperouter"))
    p.add_argument(
        "--state",
        help="a state store (postgresql://..., sqlite:///path) instead of the state dir's",
    )
    p.add_argument("--processor", type=nonempty, help="only this processor's dead triggers")
    p.set_defaults(func=run)


@contextmanager
def _stores(args: argparse.Namespace) -> Iterator[list[_Outbox]]:
    """The stores to act on, closed afterwards."""
    opened: list[_Outbox] = []
    try:
        if args.state:
            if is_keyword_dsn(args.state):  # never echoed (its password), as serve refuses it
                raise ConfigError([ConfigIssue(f"--state {KEYWORD_DSN_REFUSED}")])
            path = sqlite_path(args.state)  # None: PostgreSQL (or a scheme opening refuses)
            if path is not None and not Path(path).is_file():
                raise ConfigError([ConfigIssue(f"no state database at {path} (--state)")])
            opened.append(open_shared_state(args.state, OPTIONS, "full"))
        else:
            new, old = args.state_dir / EMBEDDED_STATE, args.state_dir / OLD_STATE
            if not new.is_file() and not old.is_file():
                raise ConfigError([ConfigIssue(f"no state database in {args.state_dir}")])
            if new.is_file():
                opened.append(open_embedded_state(new, OPTIONS, "full"))
            if old.is_file():
                opened.append(_OldOutbox(old))
        yield opened
    finally:
        for s in opened:
            s.close()


def run(args: argparse.Namespace) -> int:
    with _stores(args) as stores:
        if args.action == "list":
            for store in stores:
                for d in store.dead_letters():
                    if args.processor is not None and _processor(d.payload) != args.processor:
                        continue
                    row = {"id": d.id, "kind": d.kind, "ref": d.ref, "reason": d.reason,
                           "detail": d.detail, "at": d.at}  # fmt: skip
                    print(json.dumps(row))
            return 0
        n = 0
        for store in stores:
            if args.action == "redrive":
                n += store.redrive_dead(time.time(), args.processor)
            else:
                n += store.discard_dead(args.processor)
        print(json.dumps({args.action: n}))
        return 0


def _processor(payload: bytes | None) -> str | None:
    """The processor of a trigger dead letter's payload (None for anything else)."""
    try:
        obj = json.loads(payload or b"")
    except ValueError:
        return None
    return obj.get("processor") if isinstance(obj, dict) else None
