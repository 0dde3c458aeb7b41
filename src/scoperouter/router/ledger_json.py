"""A ledger entry as JSON: the ledger snapshot's and ``trace``'s form of
:class:`~scoperouter.router.ledger.Entry`.

Invariant: :func:`entry_from_json` inverts :func:`entry_to_json` and loads every older
snapshot's entries (a field added later is derived or defaulted when absent); a malformed
entry raises ValueError, nothing else.
"""

from __future__ import annotations

from typing import Any

from scoperouter.messages.models import Trigger
from scoperouter.router.ledger import Attempt, Entry


def entry_to_json(e: Entry) -> dict[str, Any]:
    return {
        "trigger": e.trigger.model_dump(mode="json") | {"date_field": e.trigger.date_field},
        "phase": e.phase,
        "attempt": e.attempt,
        "retries": e.retries,
        "timeouts": e.timeouts,
        "opened_at": e.opened_at,
        "due_at": e.due_at,
        "error": e.error,
        "outcome": e.outcome,
        "history": [list(a) for a in e.history],
        "failed_runs": list(e.failed_runs),
        "failures": e.failures,
        "unattributed": e.unattributed,
        "closed_by": e.closed_by,
        "opened_seq": e.opened_seq,
    }


def _failures_unknown(history: tuple[Attempt, ...]) -> int:
    """For a snapshot that recorded only *that* a run reported a failure, not how many
    reports: the attempts dispatched since the last redrive (at least 1) -- every report
    counted is of one of those runs, and each sends one success, so a success naming no
    attempt never closes the entry earlier than it would with the count."""
    since = 0
    for a in history:
        if a.what == "redrive":
            since = 0
        elif a.what == "dispatched":
            since += 1
    return max(1, since)


def entry_from_json(item: dict[str, Any]) -> Entry:
    try:
        phase, outcome = item["phase"], item.get("outcome")
        history = tuple(
            Attempt(float(a[0]), str(a[1]), int(a[2]), a[3], a[4] if len(a) > 4 else None)
            for a in item.get("history", [])
        )
        if "failures" in item:
            failures = int(item["failures"])
        else:
            # older snapshots: whether a run reported a failure (absent in the oldest: an
            # entry still open, or dead, after a failure had one), not how many
            derived = phase != "succeeded" and outcome in ("partial", "failed")
            failed = bool(item.get("reported_failure", derived))
            failures = _failures_unknown(history) if failed else 0
        return Entry(
            Trigger.model_validate(item["trigger"]),
            item["phase"],
            int(item["attempt"]),
            int(item["retries"]),
            int(item["timeouts"]),
            float(item["opened_at"]),
            None if item.get("due_at") is None else float(item["due_at"]),
            item.get("error"),
            item.get("outcome"),
            history,
            tuple(str(m) for m in item.get("failed_runs", ())),  # absent in older snapshots
            failures,
            int(item.get("unattributed", 0)),  # absent in older snapshots: none counted
            # absent in older snapshots: no closing run known (a later report only reopens)
            None if item.get("closed_by") is None else str(item["closed_by"]),
            # absent in older snapshots: 0, the book orders those by opened_at, trigger id
            int(item.get("opened_seq", 0)),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # IndexError: a short history item
        raise ValueError(f"malformed ledger entry: {exc}") from exc
