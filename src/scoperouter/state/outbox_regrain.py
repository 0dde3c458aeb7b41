"""Triggers waiting in a state store's outbox (or the per-process Router store's
``triggers``), under their processor's granularity now: run once when a router starts on
the store, next to the windows' limits (:mod:`.window_limits`).

Invariant: afterwards no ``pending`` or ``leased`` outbox row of a processor in the
registry carries entity ids of another type than the processor's granularity now: such a
row (fired before a restart that rolled the processor back to ``granularity: date``, or
gave it another entity type) holds the full-date trigger
(:func:`scoperouter.router.trigger_regrain.regrained`: new body, new trigger id; its
attempts, due time and lease kept). Rows of a processor no longer in the registry, done
and dead rows, and rows that do not parse (the dispatcher dead-letters those) are left as
they are. Runs in the caller's transaction; on PostgreSQL the rows are locked in id order.
A date-scope row is not parsed (its body names no ``"entities"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from scoperouter.messages.models import Trigger
from scoperouter.router.trigger_regrain import regrained
from scoperouter.state.shared_sql import Executes

_WAITING = (
    "SELECT id, body FROM {table} WHERE processor = %s "
    "AND status IN ('pending', 'leased') ORDER BY id"
)
_REWRITE = "UPDATE {table} SET trigger_id = %s, body = %s WHERE id = %s"
TABLES = ("sr_outbox", "triggers")  # the state stores', the per-process Router store's


def regrain_outbox(
    db: Executes,
    granularities: Mapping[str, str],
    to_body: Callable[[Trigger], Any],
    *,
    placeholder: str,
    lock: bool,
    table: str = "sr_outbox",
) -> int:
    """Rewrite every waiting row of a processor in ``granularities`` whose trigger's ids it
    no longer takes (``to_body``: the trigger as the store keeps a body); returns how many.
    ``table``: the outbox table (:data:`TABLES`; the Router store's ``triggers`` has the same
    ``id``, ``processor``, ``trigger_id``, ``body`` and ``status`` columns)."""
    assert table in TABLES
    select = _WAITING.format(table=table).replace("%s", placeholder)
    select += " FOR UPDATE" if lock else ""
    update = _REWRITE.format(table=table).replace("%s", placeholder)
    changed = 0
    for proc in sorted(granularities):
        for row_id, body in db.execute(select, (proc,)).fetchall():
            raw = bytes(body) if not isinstance(body, str) else body.encode()
            if b'"entities"' not in raw:
                continue
            try:
                t = Trigger.model_validate_json(raw)
            except (ValidationError, ValueError):
                continue
            new = regrained(t, granularities[proc])
            if new is not None:
                db.execute(update, (new.trigger_id, to_body(new), row_id))
                changed += 1
    return changed
