"""``scoperouter deadletters list | show ID | redrive [ID... | --reason R | --processor P] [--state-dir DIR] [--json]``.

Dead letters of the closed loop: triggers that failed after ``run_retries`` re-dispatches or
timed out after theirs (docs/ledger.md), read from ``<state-dir>/loop.json``. Triggers that
could not be delivered (a target's refusal, past the retry horizon) are the outbox's dead
letters, loop or no loop: ``scoperouter outbox list`` (without a ledger the error says so). ``list`` shows
one line each (trigger id, processor, date, attempts, last outcome, error); ``show`` the
trigger and its history; ``redrive`` asks the router to send them again with the same
trigger id (processors stay idempotent) and fresh retries: the request is appended to
``<state-dir>/loop-requests.jsonl``, which a running ``serve`` applies once; its completion
then closes the trigger. ``--reason`` matches the last outcome (``failed``, ``timed_out``) or
a substring of the error. Exit 0; 1 when nothing matches (or no ledger), or when an ``ID``
is not a dead letter (then nothing is requested); 2 for an empty ``--reason`` or
``--processor`` (an unset shell variable must not widen the redrive to every dead letter).
With ``--json`` stdout is always JSON (but for that usage error).

Invariant: the command never rewrites the ledger (only the router does); a request has a
unique id and is applied at most once.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from scoperouter.commands import common, nonempty
from scoperouter.commands.trace import DEFAULT_STATE_DIR, load_entries
from scoperouter.errors import ConfigError
from scoperouter.router.ledger import Entry


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "deadletters",
        help="list, show and redrive dead-lettered triggers",
        description="Dead letters of the trigger ledger (docs/ledger.md).",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    shared = common(json=True)
    shared.add_argument("--state-dir", type=Path, default=None, help="default ./.scoperouter")
    sub.add_parser("list", parents=[shared], help="one line per dead letter").set_defaults(func=run)
    s = sub.add_parser("show", parents=[shared], help="a dead letter and its history")
    s.add_argument("trigger_id")
    s.set_defaults(func=run)
    r = sub.add_parser("redrive", parents=[shared], help="send dead letters again (same id)")
    r.add_argument("ids", nargs="*", metavar="ID")
    r.add_argument(
        "--reason", type=nonempty, default=None, help="last outcome or a part of the error"
    )
    r.add_argument("--processor", type=nonempty, default=None)
    r.set_defaults(func=run)


def _row(e: Entry) -> dict[str, Any]:
    t = e.trigger
    return {
        "trigger_id": t.trigger_id,
        "processor": t.processor,
        "date": t.game_date.isoformat(),
        "scope": t.scope,
        "entity_ids": list(t.entity_ids) if t.entity_ids is not None else None,
        "attempts": e.attempt,
        "outcome": e.outcome,
        "error": e.error,
    }


def _select(dead: list[Entry], args: argparse.Namespace) -> list[Entry]:
    ids = set(args.ids)
    out = []
    for e in dead:
        if ids and e.trigger_id not in ids:
            continue
        if args.processor is not None and e.trigger.processor != args.processor:
            continue
        if (
            args.reason is not None
            and args.reason != e.outcome
            and args.reason not in (e.error or "")
        ):
            continue
        out.append(e)
    return out


def run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or DEFAULT_STATE_DIR
    # dispatch's dead letters (a target's refusal, past the retry horizon) are the outbox's,
    # whether the closed loop is on or off
    outbox = (
        f"; triggers dead-lettered at delivery: scoperouter outbox list --state-dir {state_dir}"
    )
    dead = [e for e in load_entries(state_dir, outbox) if e.phase == "dead"]
    if args.action == "list":
        rows = [_row(e) for e in dead]
        if args.json:
            print(json.dumps(rows))
        else:
            for r in rows:
                print(
                    f"{r['trigger_id']}  {r['processor']}  {r['date']}  attempts={r['attempts']}  "
                    f"{r['outcome']}: {r['error'] or ''}"
                )
            print(f"{len(rows)} dead letter(s) in {state_dir}")
        return 0
    if args.action == "show":
        match = [e for e in dead if e.trigger_id == args.trigger_id]
        if not match:
            raise ConfigError(f"{args.trigger_id}: no dead letter with this trigger id")
        e = match[0]
        body = {**_row(e), "trigger": e.trigger.wire(), "history": [a._asdict() for a in e.history]}
        if args.json:
            print(json.dumps(body))
        else:
            print(json.dumps(body, indent=2))
        return 0
    unknown = sorted(set(args.ids) - {e.trigger_id for e in dead})
    if unknown:  # a typo never narrows the request silently: nothing is requested
        msg = f"not a dead letter: {', '.join(unknown)}; nothing requested"
        print(f"error: {msg}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": "unknown_ids", "ids": unknown, "detail": msg}))
        return 1
    chosen = _select(dead, args)
    if not args.ids and args.reason is None and args.processor is None:
        chosen = dead  # redrive with no filter: every dead letter
    if not chosen:
        if args.json:
            print(json.dumps({"error": "nothing_to_redrive", "ids": []}))
        else:
            print("nothing to redrive")
        return 1
    from scoperouter.runtime.loop_store import Requests

    req = {"id": uuid.uuid4().hex, "op": "redrive", "trigger_ids": [e.trigger_id for e in chosen]}
    Requests(state_dir).append(req)
    if args.json:
        print(json.dumps(req))
    else:
        print(
            f"redrive requested for {len(chosen)} trigger(s) (request {req['id']}); "
            "the router sends them with the same trigger ids"
        )
    return 0
