"""What a ``POST /events`` body is, before the router sees it: its ``Content-Encoding``
undone (:func:`decode_body`), and a Pub/Sub push envelope told apart from a plain event
and unwrapped into the router's :class:`~scoperouter.runtime.router.Inbound`
(:func:`_envelope_like`, :func:`_from_envelope`).

Invariant: at most one non-identity coding is undone (stacked codings are a 400
``bad_request``, refused before any decompression); decoding never produces more than its limit (no zip bombs: the limit bounds the
decompressed size, of all gzip members together) and never ignores a byte of the body (data
after the last gzip member or the deflate stream is a 400 ``bad_request``); a body with a ``message`` key is an envelope only as the pull path
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
_GZIP_MAGIC = b"\x1f\x8b"  # how a gzip member starts (RFC 1952)
MAX_CODINGS = 1  # non-identity Content-Encodings undone (:func:`decode_body`)
_CHUNK = 16_384  # input fed to the decompressor at a time (:func:`_inflate`)


def decode_body(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate; identity), never producing more than
    ``limit`` bytes. gzip may be several members (RFC 1952: their contents concatenated,
    the limit on the total); anything after the last member, or after a deflate stream, is
    not silently ignored (it would drop what it carries): :class:`BadEncoding`. Raises
    :class:`BadEncoding` or :class:`BodyTooLarge`.

    At most one coding other than identity is undone (:data:`MAX_CODINGS`): each layer is
    bounded by ``limit`` but decoded on the event loop, so a body of a thousand stacked gzip
    layers would cost a thousand decompressions; stacked codings are refused before any."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if len(codings) > MAX_CODINGS:
        shown = ", ".join(codings[:4]) + (", ..." if len(codings) > 4 else "")
        raise BadEncoding(
            f"at most one Content-Encoding other than identity is accepted "
            f"(got {len(codings)}: {shown[:80]})"
        )
    for coding in reversed(codings):  # applied in order, so undone in reverse
        wbits = _WBITS.get(coding)
        if wbits is None:
            raise BadEncoding(
                f"unsupported Content-Encoding {coding[:40]!r} (gzip, deflate or identity)"
            )
        attempts = (
            [wbits, -zlib.MAX_WBITS] if coding == "deflate" else [wbits]
        )  # deflate: zlib or raw
        for i, bits in enumerate(attempts):
            try:
                body = _inflate(body, coding, bits, limit)
            except zlib.error as exc:
                if i + 1 < len(attempts):
                    continue
                raise BadEncoding(f"body is not valid {coding}: {exc}"[:200]) from None
            break
    return body


def _inflate(body: bytes, coding: str, bits: int, limit: int) -> bytes:
    """``body`` decompressed (``bits``: zlib's wbits), at most ``limit`` bytes in all; each
    gzip member in turn. Raises zlib.error, :class:`BadEncoding` or :class:`BodyTooLarge`.

    The input is fed :data:`_CHUNK` bytes at a time: what follows a member's end is copied
    (``unused_data``) from that chunk only, so a body of many tiny members costs linear
    time, not quadratic."""
    out: list[bytes] = []
    size = 0
    view = memoryview(body)
    pos = 0
    while True:
        d = zlib.decompressobj(bits)
        while not d.eof and pos < len(view):
            chunk = view[pos : pos + _CHUNK]
            out.append(d.decompress(chunk, limit + 1 - size))  # > 0: size <= limit here
            size += len(out[-1])
            if size > limit or d.unconsumed_tail:
                raise BodyTooLarge(f"decompressed body exceeds {limit} bytes")
            pos += len(chunk) - len(d.unused_data)
        if not d.eof:
            raise BadEncoding(f"body is not valid {coding}: truncated")
        if pos == len(view):
            return b"".join(out)
        if bits != _WBITS["gzip"]:  # one deflate stream: nothing may follow it
            raise BadEncoding(f"body is not valid {coding}: data after the end of the stream")
        if view[pos : pos + 2] != _GZIP_MAGIC:
            raise BadEncoding(f"body is not valid {coding}: data after the last member")


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
        subscription=sub if isinstance(sub := obj.get("subscription"), str) else None,
        dead_letter_on_reject=True,
        trigger_id=push.attribute("trigger_id"),
    )
