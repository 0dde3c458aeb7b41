"""The HTTP answer of an ingress outcome: what ``POST /events`` (and the other routes'
refusals) send back, and :class:`_Answer`, where the router settles one HTTP message.

Invariant: every non-2xx answer is :func:`_error`'s JSON body ``{"error": reason, "detail":
..., **extra}``; an accepted or duplicate outcome is a 200 whose JSON is ``{"status",
"event_id", "triggers"}``, the same text whether written by aiohttp or as a ready answer
(:mod:`.http_ready`); a dead-lettered message is a 200 (Pub/Sub acks it). A client gone
only drops its answer: the event is still committed. The routes that send these answers
are :class:`~scoperouter.runtime.http.IngressApp`'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import hdrs, web

from scoperouter.runtime.http_ready import Ready, ok_text
from scoperouter.runtime.router import Outcome

# json_response's header (copied into each response's own headers)
_JSON_HEADERS = {hdrs.CONTENT_TYPE: "application/json; charset=utf-8"}


def _error(status: int, reason: str, detail: str, **extra: Any) -> web.Response:
    body = {"error": reason, "detail": detail, **extra}
    return web.json_response(body, status=status)


class _Answer:
    """Where the router settles one HTTP message (:class:`~scoperouter.runtime.intake.Settle`):
    its :class:`Outcome` becomes the response the request's handler awaits (``ready``: an
    accepted or duplicate event's as a :class:`~scoperouter.runtime.http_ready.Ready`). A
    client gone (the handler cancelled, so its future) only drops the answer: the event is
    still committed."""

    __slots__ = ("fut", "push", "ready")

    def __init__(self, fut: asyncio.Future[Any], push: bool, ready: bool = False) -> None:
        self.fut = fut
        self.push = push
        self.ready = ready

    def done(self) -> bool:
        return self.fut.done()

    def set_result(self, o: Outcome, /) -> None:
        if (
            self.ready
            and o.status in ("accepted", "duplicate")
            and isinstance(o.event_id, str)
            and type(o.triggers) is int
        ):
            self.fut.set_result(Ready(ok_text(o.status, o.event_id, o.triggers)))
            return
        try:
            resp = outcome_response(o, push=self.push)
        except Exception as exc:  # (never expected) the request gets a 500, not the others
            self.fut.set_exception(exc)
            return
        self.fut.set_result(resp)


def outcome_response(o: Outcome, *, push: bool) -> web.Response:
    """The response of outcome ``o`` (an accepted or duplicate one's JSON is
    :func:`~scoperouter.runtime.http_ready.ok_text`'s)."""
    if o.status in ("accepted", "duplicate"):
        if isinstance(o.event_id, str) and type(o.triggers) is int:
            text = ok_text(o.status, o.event_id, o.triggers)
            return web.Response(body=text.encode(), headers=_JSON_HEADERS)
        return web.json_response(
            {"status": o.status, "event_id": o.event_id, "triggers": o.triggers}
        )
    if o.status == "rejected":
        if o.dead_lettered:
            return web.json_response(
                {
                    "status": "dead_lettered",
                    "error": o.reason,
                    "detail": o.detail,
                    "event_id": o.event_id,
                }
            )
        return _error(400, o.reason or "invalid_event", o.detail or "", event_id=o.event_id)
    return _error(503, o.reason or "unavailable", "retry later")
