"""Dead letters' refs: unique per ``(kind, ref)`` in every store, and never a reason to drop one.

Invariant: a dead letter is skipped only when one with the same ``(kind, ref)`` AND the same
payload is stored already (a redelivery, a carry or mark written twice); a different payload
whose ref is taken (a rejected event's message id another topic used too, a push envelope's
free text) is stored under another ref (:func:`other_refs`), and at worst under no ref
(``NULL``: never a conflict). A ``trigger`` ref (``trigger_id#row id``) names its outbox row,
so a conflict there is always the same dead letter. Every ref written is at most
:data:`~scoperouter.messages.event_fields.MAX_ID_CHARS` characters (:func:`long_ref`). No
free text a store writes from outside (a ref, a dead letter's reason and detail, an outbox
row's error) holds a NUL: each is written ``\\x00`` (:func:`nul_free`), in every store alike.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator

from scoperouter.messages.event_fields import MAX_ID_CHARS

logger = logging.getLogger("scoperouter.state")

# refs tried after the one given before a dead letter is stored with no ref (NULL)
OTHER_REFS = 8

# what ``stored_payload`` answers for a ref with no row visible to the transaction
MISSING = object()


def trigger_ref(trigger_id: str, row_id: int) -> str:
    """The ref of a ``trigger`` dead letter: the trigger's id and its outbox row's,
    ``<trigger_id>#<row id>`` (the letter follows its row: redrive, discard, regrain)."""
    return f"{trigger_id}#{row_id}"


def nul_free(text: str) -> str:
    """``text`` with each NUL written ``\\x00``. PostgreSQL's ``text`` cannot hold a NUL:
    the write failed, and with it the whole transaction (an ingest batch, a page of
    dispatch marks) and every retry of it -- a target's error answer quoting one blocked
    the replica's ingest and dispatch for good."""
    return text.replace("\x00", "\\x00")


def long_ref(ref: str) -> str:
    """A dead letter's ``ref`` longer than :data:`MAX_ID_CHARS` (a push envelope's
    ``messageId``: text of any length) as its head and a hash of the whole, that many
    characters in all: the same message gets the same ref, another one another ref.
    PostgreSQL's unique index on ``(kind, ref)`` takes ~2.7 kB a key: the whole id failed the
    insert, and with it the batch, answered 503 and redelivered for ever with any innocent
    event that shared it (the payload keeps the message as received)."""
    digest = hashlib.sha256(ref.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"{ref[: MAX_ID_CHARS - 26]}~#{digest}"


def bounded(ref: str) -> str:
    """``ref``, or :func:`long_ref` of it when it is longer than :data:`MAX_ID_CHARS`."""
    return long_ref(ref) if len(ref) > MAX_ID_CHARS else ref


def payload_digest(payload: bytes | None, chars: int = 32) -> str:
    """The first ``chars`` hex digits of the payload's SHA-256 (an empty one for None)."""
    return hashlib.sha256(payload or b"").hexdigest()[:chars]


def other_refs(ref: str, payload: bytes | None) -> Iterator[str]:
    """The refs a dead letter whose ``ref`` holds another payload is stored under, in
    order: ``<ref>~<payload digest>``, then ``~2``, ``~3`` ... -- the same payload gets
    the same ones, so its redelivery finds itself there and is skipped."""
    first = f"{ref}~{payload_digest(payload, 16)}"
    yield bounded(first)
    for n in range(2, OTHER_REFS + 1):
        yield bounded(f"{first}~{n}")


def place(
    kind: str,
    ref: str | None,
    payload: bytes | None,
    insert: Callable[[str | None], bool],
    stored_payload: Callable[[str], object],
) -> bool:
    """Store one dead letter by ``insert(ref)`` (True: a row was written; False: ``(kind,
    ref)`` is taken), trying :func:`other_refs` while a taken ref holds another payload
    (``stored_payload(ref)``: its payload, or anything unequal when none is visible).
    True when the letter was stored, False when the same one was there already."""
    if insert(ref):
        return True
    if ref is None or kind == "trigger" or _same(stored_payload(ref), payload):
        return False
    for other in other_refs(ref, payload):
        if insert(other):
            logger.warning(
                "dead letter ref taken by another message: stored under another ref",
                extra={"kind": kind, "ref": ref, "stored_as": other},
            )
            return True
        if _same(stored_payload(other), payload):
            return False
    logger.warning(
        "dead letter ref taken by other messages: stored with no ref",
        extra={"kind": kind, "ref": ref},
    )
    return insert(None)


def _same(stored: object, payload: bytes | None) -> bool:
    if stored is MISSING:
        return False
    if isinstance(stored, bytes | bytearray | memoryview):
        return payload is not None and bytes(stored) == payload
    return stored is None and payload is None
