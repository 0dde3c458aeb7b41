"""What the SDK sends as an entity id.

Invariant: an id the SDK sends is a ``str`` as given, or an ``int`` (an INT64 key column)
as its decimal string; ``None`` and a blank, padded (spaces around it) or invisible
string name nobody (the caller makes the event date level; a missed id naming nobody is
refused): relation data is read stripped, so ``"lebronjames "`` would match no row; anything else -- a tuple key, a float, a bool, bytes --
raises TypeError naming the key, never ``str()``-ed into an id that names no entity
(``"('lebronjames', 'draftkings')"``, ``"2544.0"``).
"""

from __future__ import annotations

from numbers import Integral

from scoperouter.messages.event_fields import unnamed_id


def entity_name(key: object, what: str = "entity id") -> str | None:
    """``key`` as the id sent, or None when it names nobody; TypeError when it is no id."""
    if key is None:
        return None
    if isinstance(key, str):
        return None if unnamed_id(key) else key
    if isinstance(key, Integral) and not isinstance(key, bool):
        return str(int(key))
    raise TypeError(
        f"{what} {key!r:.80} is a {type(key).__name__}: an entity id is a str (or an int, "
        "sent as its digits); key each row by its entity's id (several rows per entity, e.g. "
        "one per bookmaker: make them one row per entity, e.g. a dict of the rows)"
    )
