"""Ids made from the body alone, and their acceptance: each acceptance is an event of its own.

Invariant: :func:`accepted_as` changes only an id made from the body alone (``h-`` and 24
lowercase hex digits, :func:`~scoperouter.messages.event_fields.event_id_of`: the message
had no ``event_id``, ``execution_id`` or message id), to that id, ``~`` and the acceptance
time in milliseconds; every other event is returned as it is. Pure: the time is passed in.

Why: nothing tells such a message's redelivery from the same body sent again for new data
-- production's BDB retry re-sends one body for a date every 6 hours as more of its games
get data (``orchestration/cloud_functions/bdb_retry_processor/main.py:184-205``, no
messageId in its envelope). Known by the body's hash alone, every re-send within the dedup
horizon was answered ``duplicate``; and accepted again under the same id, its windows fired
triggers with the first send's trigger ids (a trigger id is a hash of the window's content,
its ``caused_by`` included), which processors dedupe on, and the execution log kept one
event. With the time in the id, a re-send is a new event everywhere (seen ids, windows,
trigger ids, the log), while copies accepted at the same millisecond (one ingest batch)
stay one. A second run costs less than a lost update.
"""

from __future__ import annotations

import re

from scoperouter.messages.models import Event

_BODY_ID = re.compile(r"h-[0-9a-f]{24}")


def is_body_id(event_id: str) -> bool:
    """True for an id made from the body alone (``h-`` + 24 lowercase hex digits)."""
    return len(event_id) == 26 and _BODY_ID.fullmatch(event_id) is not None


def accepted_as(ev: Event, at: float) -> Event:
    """``ev`` as accepted at ``at`` (epoch seconds; a driver's virtual clock): a body id
    gets ``~<milliseconds>``, every other event is ``ev`` itself."""
    eid = ev.event_id
    if len(eid) != 26 or _BODY_ID.fullmatch(eid) is None:
        return ev
    return ev.model_copy(update={"event_id": f"{eid}~{round(at * 1000)}"})
