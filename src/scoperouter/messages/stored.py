"""Reading a trigger row's body that another version of scoperouter wrote.

Replicas of two revisions share one outbox during a rolling deploy: a newer one may store
triggers with a field this version's :class:`~scoperouter.messages.models.Trigger` does not
know (``extra="forbid"``: the model refuses it). The body is sent to the target as stored
(its bytes, never re-serialised); the model read here only names the row's processor, date
and scope for lanes, metrics and logs. Invariant: a body whose only fault is unknown
top-level fields reads with those fields left out, and their names are returned for the
caller to count and say; any other fault raises as before (the row is unreadable).
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from scoperouter.messages.models import Trigger


def read_stored(body: str | bytes) -> tuple[Trigger, tuple[str, ...]]:
    """The trigger of ``body`` and the unknown top-level fields left out (sorted; none for
    a body this version wrote). Raises ``ValueError`` (``ValidationError``) otherwise."""
    try:
        return Trigger.model_validate_json(body), ()
    except ValidationError as exc:
        errors = exc.errors()
        extra = {str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"}
        if not extra or any(e["type"] != "extra_forbidden" or len(e["loc"]) != 1 for e in errors):
            raise
    data = json.loads(body)
    for name in extra:
        data.pop(name, None)
    return Trigger.model_validate(data), tuple(sorted(extra))
