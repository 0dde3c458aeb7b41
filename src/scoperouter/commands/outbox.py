"""``scoperouter outbox [list|redrive|discard] [--state-dir D] [--processor P]``.

The dispatch outbox's dead triggers (past their target's ``retry_horizon``, over
``max_attempts``, or refused for good; ``deadletters`` is the closed loop's ledger) are
kept until an operator acts: ``redrive`` makes them pending again (fresh
attempt count and horizon; a running daemon picks them up within
``dispatch_page_interval`` x 60, a stopped one at its next start), ``discard`` deletes them
and their dead letters. ``list`` prints one JSON object per dead letter (payloads left out).

Invariant: only dead trigger rows and their ``trigger`` dead letters change, in one
transaction; SQLite's busy timeout makes it safe next to a running daemon.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.runtime.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="list, redrive or discard dead triggers of the outbox")
    p.add_argument("action", choices=("list", "redrive", "discard"), nargs="?", default="list")
    p.add_argument("--state-dir", type=Path, default=Path(".scoperouter"))
    p.add_argument("--processor", help="only this processor's dead triggers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.state_dir / "state.sqlite3"
    if not path.is_file():
        raise ConfigError([ConfigIssue(f"no state database at {path}")])
    store = Store(path)
    try:
        if args.action == "list":
            for d in store.dead_letters():
                if args.processor and _processor(d.payload) != args.processor:
                    continue
                row = {"id": d.id, "kind": d.kind, "ref": d.ref, "reason": d.reason,
                       "detail": d.detail, "at": d.at}  # fmt: skip
                print(json.dumps(row))
            return 0
        with store.transaction():
            if args.action == "redrive":
                n = store.redrive_dead(time.time(), args.processor)
            else:
                n = store.discard_dead(args.processor)
        print(json.dumps({args.action: n}))
        return 0
    finally:
        store.close()


def _processor(payload: bytes | None) -> str | None:
    """The processor of a trigger dead letter's payload (None for anything else)."""
    try:
        obj = json.loads(payload or b"")
    except ValueError:
        return None
    return obj.get("processor") if isinstance(obj, dict) else None
