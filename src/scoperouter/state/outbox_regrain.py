"""Triggers waiting in a state store's outbox (or the per-process Router store's
``triggers``), under their processor's granularity now: run once when a router starts on
the store, next to the windows' limits (:mod:`.window_limits`).

Invariant: afterwards no ``pending``, ``leased`` or ``dead`` outbox row of a processor in
the registry carries entity ids of another type than the processor's granularity now: such
a row (fired before a restart that rolled the processor back to ``granularity: date``, or
gave it another entity type) holds the full-date trigger
(:func:`scoperouter.router.trigger_regrain.regrained`: new body, new trigger id; its
attempts, due time and lease kept). A dead row's dead letter follows it (its ref
``<trigger_id>#<row id>`` and payload): a redrive -- ``outbox redrive`` beside a running
daemon too, which pages the row as it is -- sends the trigger the processor takes now, not
the entity ids it no longer does. Rows of a processor no longer in the registry, done rows,
and rows that do not parse (the dispatcher dead-letters those) are left as they are. Runs
in the caller's transaction; on PostgreSQL the rows are locked in id order. A date-scope
row is not parsed (its body names no ``"entities"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from scoperouter.messages.models import Trigger
from scoperouter.router.trigger_regrain import regrained
from scoperouter.state.letter_refs import trigger_ref
from scoperouter.state.shared_sql import Executes

_WAITING = (
    "SELECT id, body, status, trigger_id FROM {table} WHERE processor = %s "
    "AND status IN ('pending', 'leased', 'dead') ORDER BY id"
)
_REWRITE = "UPDATE {table} SET trigger_id = %s, body = %s WHERE id = %s"
_LETTER = "UPDATE {letters} SET ref = %s, payload = %s WHERE kind = 'trigger' AND ref = %s"
# each outbox table (the state stores', the per-process Router store's) and its dead letters
LETTERS = {"sr_outbox": "sr_dead_letters", "triggers": "dead_letters"}
TABLES = tuple(LETTERS)


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
    letter = _LETTER.format(letters=LETTERS[table]).replace("%s", placeholder)
    changed = 0
    for proc in sorted(granularities):
        for row_id, body, status, old_id in db.execute(select, (proc,)).fetchall():
            raw = bytes(body) if not isinstance(body, str) else body.encode()
            if b'"entities"' not in raw:
                continue
            try:
                t = Trigger.model_validate_json(raw)
            except (ValidationError, ValueError):
                continue
            new = regrained(t, granularities[proc])
            if new is not None:
                new_body = to_body(new)
                db.execute(update, (new.trigger_id, new_body, row_id))
                if status == "dead":
                    payload = new_body.encode() if isinstance(new_body, str) else new_body
                    old_ref, new_ref = (
                        trigger_ref(old_id, row_id),
                        trigger_ref(new.trigger_id, row_id),
                    )
                    db.execute(letter, (new_ref, payload, old_ref))
                changed += 1
    return changed
