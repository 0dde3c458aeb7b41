"""What a ``POST /events`` body is, before the router sees it: its ``Content-Encoding``
undone (:func:`decode_body`), and a Pub/Sub push envelope told apart from a plain event
and unwrapped into the router's :class:`~scoperouter.runtime.router.Inbound`
(:func:`_envelope_like`, :func:`_from_envelope`).

Invariant: decoding never produces more than its limit (no zip bombs: the limit bounds the
decompressed size); a body with a ``message`` key is an envelope only as the pull path
reads one (:func:`~scoperouter.messages.push.is_push_envelope`) or when it has nothing but
envelope keys; a recognisable push message that cannot be used (no ``data``, bad base64)
becomes an Inbound the router dead-letters and acks (its payload is never valid JSON; a 4xx
would make Pub/Sub redeliver it), while an envelope that does not parse or a message that
is not recognisable is a 400 ``invalid_envelope``.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from aiohttp import web

from scoperouter.messages.push import (
    PROBLEM_TEXT,
    PushEnvelopeError,
    is_push_envelope,
    parse_push_envelope,
)
from scoperouter.runtime.http_answers import _error
from scoperouter.runtime.router import Inbound


class BadEncoding(Exception):
    """The body does not match its Content-Encoding, or the encoding is not supported."""


class BodyTooLarge(Exception):
    """The decompressed body exceeds the limit."""


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decode_body(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate; identity), never producing more than
    ``limit`` bytes. Raises :class:`BadEncoding` or :class:`BodyTooLarge`."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):  # applied in order, so undone in reverse
        if coding == "identity":
            continue
        wbits = _WBITS.get(coding)
        if wbits is None:
            raise BadEncoding(
                f"unsupported Content-Encoding {coding[:40]!r} (gzip, deflate or identity)"
            )
        attempts = (
            [wbits, -zlib.MAX_WBITS] if coding == "deflate" else [wbits]
        )  # deflate: zlib or raw
        for i, bits in enumerate(attempts):
            d = zlib.decompressobj(bits)
            try:
                out = d.decompress(body, limit + 1)
            except zlib.error as exc:
                if i + 1 < len(attempts):
                    continue
                raise BadEncoding(f"body is not valid {coding}: {exc}"[:200]) from None
            if len(out) > limit or d.unconsumed_tail:
                raise BodyTooLarge(f"decompressed body exceeds {limit} bytes")
            if not d.eof:
                raise BadEncoding(f"body is not valid {coding}: truncated")
            body = out
            break
    return body


_ENVELOPE_KEYS = frozenset({"message", "subscription", "deliveryAttempt"})


def _envelope_like(obj: dict[str, Any]) -> bool:
    """Whether a body with a ``message`` key is (meant as) a push envelope: its ``message``
    carries Pub/Sub message keys, or the body has nothing but envelope keys (``{"message":
    "x"}`` is a broken envelope: 400 invalid_envelope). A plain event that merely has a
    ``message`` field (``"message": "loaded 450 rows"``) is an event, as it is when pulled
    (push.is_push_envelope: the SDK's rule too)."""
    return is_push_envelope(obj) or obj.keys() <= _ENVELOPE_KEYS


def _from_envelope(obj: dict[str, Any]) -> Inbound | web.Response:
    try:
        push = parse_push_envelope(obj)
    except PushEnvelopeError as exc:
        return _error(400, "invalid_envelope", str(exc))
    raw = push.data or b""
    if push.problem is not None:
        problem = PROBLEM_TEXT[push.problem]
        if not push.recognisable:
            return _error(400, "invalid_envelope", problem.removeprefix("push "))
        # Pub/Sub redelivers anything not acked with a 2xx, so an unusable push message is
        # dead-lettered (and acked) like any invalid event. The stored payload is the
        # problem plus the message as received; it is never valid JSON, so the router
        # rejects it (reason not_json) instead of routing it.
        raw = (
            f"{problem}: ".encode() + json.dumps(obj.get("message"), default=str)[:10_000].encode()
        )
    return Inbound(
        "push",
        data=raw,
        message_id=push.message_id,
        dead_letter_on_reject=True,
        trigger_id=push.attribute("trigger_id"),
    )
