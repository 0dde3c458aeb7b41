"""HTTP ingress (aiohttp): ``POST /events`` plus ``/healthz``, ``/readyz``, ``/metrics``.

``POST /events`` takes a plain event (any shape of SPEC section 3) or a Pub/Sub push
envelope ``{"message": {"data": <base64>, "messageId": ...}, "subscription": ...}``.

Answers (every non-2xx has a JSON body ``{"error": reason, "detail": ...}`` and is counted
in ``scoperouter_events_rejected_total{reason}``; a request this module refuses counts in
``scoperouter_events_received_total`` too, as the router counts a message it rejects:
received = accepted + duplicate + rejected. A refusal on ``/backfills`` is no event: it
counts in neither):

* 200 ``{"status": "accepted" | "duplicate", "event_id", "triggers"}`` -- durably stored.
* 200 ``{"status": "dead_lettered", ...}`` -- a *push envelope* whose event is invalid, or
  whose message has no ``data`` or invalid base64: it is kept in the dead-letter table and
  acked, because a 4xx would make Pub/Sub redeliver the poison message until its
  retention expires.
* 400 -- malformed request or invalid plain event (reason code of :class:`EventError`).
* 401 -- auth is configured and the request does not carry a valid token.
* 503 ``auth_unavailable`` -- OIDC: the token's key cannot be looked up now (Google's
  certificates unavailable): not a verdict on the token, retry.
* 413 -- body larger than ``max_body_bytes``.
* 503 -- not ready / shutting down / store error: retry later (Pub/Sub push retries).

How a body is decoded and an envelope unwrapped is :mod:`.http_request`; how an outcome
becomes its answer, :mod:`.http_answers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError

from scoperouter.errors import EventError
from scoperouter.messages.fast_event import fast_event
from scoperouter.messages.normalize import loads_event_json
from scoperouter.runtime.http_answers import _Answer, _error, outcome_response
from scoperouter.runtime.http_request import (
    BadEncoding,
    BodyTooLarge,
    _envelope_like,
    _from_envelope,
    decode_body,
)
from scoperouter.runtime.metrics import CONTENT_TYPE
from scoperouter.runtime.oidc import AuthUnavailable, CertCache, TokenVerifier, oidc_verifier
from scoperouter.runtime.outcomes import fast_inbound
from scoperouter.runtime.router import Inbound, Router

logger = logging.getLogger("scoperouter.runtime.http")

__all__ = ["CertCache", "IngressApp", "TokenVerifier", "bearer_verifier", "oidc_verifier"]


def bearer_verifier(expected: str) -> TokenVerifier:
    """A shared-secret check (constant-time comparison)."""
    want = expected.encode()

    async def verify(token: str) -> bool:
        # the header's bytes as received (aiohttp decodes them with surrogateescape): one
        # that is not UTF-8 is a wrong token (401), not an exception (500)
        try:
            got = token.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(got, want)

    return verify


_HTTP_INBOUND = vars(Inbound("http"))  # the defaults of a plain HTTP message's fields


class IngressApp:
    """Builds the aiohttp application around a :class:`Router`."""

    def __init__(
        self,
        router: Router,
        *,
        max_body_bytes: int = 1_048_576,
        verifier: TokenVerifier | None = None,
        body_timeout_s: float = 30.0,
        max_connections: int | None = None,
        connection_count: Callable[[], int] | None = None,
    ) -> None:
        self.router = router
        self.max_body_bytes = max_body_bytes
        self.verifier = verifier
        self.body_timeout_s = body_timeout_s
        self.max_connections = max_connections
        # the server's open connections (set by the daemon once its runner exists)
        self.connection_count = connection_count
        # closes the connections with no request in progress, returns how many (the daemon's)
        self.close_idle: Callable[[], int] | None = None
        # extra readiness conditions (e.g. the Pub/Sub pull): each returns None when fine,
        # else why the instance is not ready
        self._readiness: list[Callable[[], str | None]] = []
        # bodies are decompressed here (not by aiohttp's parser), so a Content-Encoding
        # the body does not match is a counted 400 and max_body_bytes bounds the
        # decompressed size too (no zip bombs)
        self.app = web.Application(
            client_max_size=max_body_bytes,
            handler_args={"auto_decompress": False},
        )
        self.app.router.add_post("/events", self.events)
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/readyz", self.readyz)
        self.app.router.add_get("/metrics", self.metrics)
        # POST /backfills, GET /backfills/ID (issue 15): the daemon sets ``backfills``
        self.backfills: Any = None  # scoperouter.backfill.http_api.BackfillApi
        self.app.router.add_post("/backfills", self.backfill_start)
        self.app.router.add_get("/backfills/{backfill_id}", self.backfill_get)

    def route_events_first(self, server: web.Server) -> None:
        """Requests of ``server`` (the application's, from its runner) that are exactly
        ``POST /events`` -- no query, no ``Expect`` header -- go straight to
        :meth:`events_now`; every other one through the application as before (its routes,
        404 / 405, ``Expect: 100-continue``). Per event this skips the application's route
        lookup and match info and its ``asyncio.get_event_loop()`` (a ``getpid`` system
        call); the application has no middleware and no response signal that it would skip."""
        through_app = server.request_handler

        def handle(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
            if (
                request.raw_path == "/events"
                and request.method == "POST"
                and hdrs.EXPECT not in request.headers
            ):
                return self.events_now(request)  # type: ignore[arg-type]  # a web.Request (the app's factory)
            return through_app(request)

        server.request_handler = handle

    def events_now(self, request: web.Request) -> Awaitable[web.Response]:
        """:meth:`events` without its coroutine when nothing in it would wait: no token to
        verify, a ``Content-Length`` within the limit and the whole body buffered (what a
        producer's small POST is) -- the same checks in the same order, then the answer's
        future straight from :meth:`_routed`. Anything else is :meth:`events` itself."""
        length = request.content_length
        content = request.content
        if (
            self.verifier is not None
            or length is None
            or length > self.max_body_bytes
            or not content.is_eof()
            or content.exception() is not None
            or self._busy()
        ):
            return self.events(request)
        body = content.read_nowait()  # the whole body (as events() takes it)
        if len(body) > self.max_body_bytes:  # (never: the parser reads Content-Length bytes)
            return self._now(
                self._refused(413, "too_large", f"body exceeds {self.max_body_bytes} bytes")
            )
        # an accepted answer as ready bytes (http_ready): keep-alive HTTP/1.1, no access log
        ready = (
            request.version == HttpVersion11
            and request.keep_alive
            and request.protocol.access_logger is None
        )
        return self._routed(request, body, ready)

    def _busy(self) -> bool:
        """More than ``max_connections`` connections are open (see :meth:`_over_cap`) once
        those with no request in progress -- idle keep-alives, heads never finished -- are
        closed (``close_idle``, only when over the cap): a few hundred silent sockets must
        not make authenticated work answer 503 while health checks pass."""
        if self.max_connections is None or self.connection_count is None:
            return False
        over = self.connection_count() - self.max_connections
        if over <= 0:
            return False
        if self.close_idle is not None:
            over -= self.close_idle()
        return over > 0

    def _over_cap(self, event: bool = True) -> web.Response | None:
        """Beyond ``max_connections`` open connections, work is refused with 503 (and the
        connection closed) while health checks still pass. Called by each work handler
        (not a middleware: that wraps every request in two more coroutines); ``event``: the
        request is ``POST /events`` (see :meth:`_refusal`)."""
        if self._busy():
            resp = self._refusal(event, 503, "too_many_connections", "server busy: retry later")
            resp.force_close()
            return resp
        return None

    def add_readiness_check(self, check: Callable[[], str | None]) -> None:
        """``/readyz`` answers 503 with ``check()``'s text while it returns one."""
        self._readiness.append(check)

    def _refused(self, status: int, reason: str, detail: str) -> web.Response:
        """A ``POST /events`` refused here (over the connection cap, no valid token, too
        large, unreadable, undecodable, not JSON): received and rejected, as the router
        counts a message it rejects (received = accepted + duplicate + rejected)."""
        m = self.router.metrics
        m.child(m.events_received, "http").inc()
        m.events_rejected.labels(reason).inc()
        return _error(status, reason, detail)

    def _refusal(self, event: bool, status: int, reason: str, detail: str) -> web.Response:
        """A refusal shared by the handlers: counted (:meth:`_refused`) when ``event`` (the
        request is ``POST /events``), else (``/backfills``: no event) only answered."""
        return self._refused(status, reason, detail) if event else _error(status, reason, detail)

    async def _auth_refusal(self, request: web.Request, event: bool = True) -> web.Response | None:
        """None when the request may proceed; else 401 (no valid token) or 503 (the token
        cannot be checked now: :class:`~scoperouter.runtime.oidc.AuthUnavailable`, retry);
        ``event``: as :meth:`_refusal`."""
        if self.verifier is None:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() == "bearer" and token.strip() and await self.verifier(token.strip()):
                return None
        except AuthUnavailable as exc:
            return self._refusal(event, 503, "auth_unavailable", f"{exc}: retry later")
        return self._refusal(event, 401, "unauthorized", "missing or invalid bearer token")

    async def events(self, request: web.Request) -> web.Response:
        busy = self._over_cap()
        if busy is not None:
            return busy
        if self.verifier is not None:
            refused = await self._auth_refusal(request)
            if refused is not None:  # (a response's truth is its state mapping's)
                return refused
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return self._refused(
                413,
                "too_large",
                f"body of {request.content_length} bytes exceeds {self.max_body_bytes}",
            )
        content = request.content
        if content.is_eof():  # the whole body is buffered: taken as read() would, at once
            body = content.read_nowait()  # (no read coroutines, one copy instead of two)
            if len(body) > self.max_body_bytes:  # read()'s limit (client_max_size)
                return self._refused(413, "too_large", f"body exceeds {self.max_body_bytes} bytes")
            return await self._routed(request, body)
        read = await self._read_body(request)
        return read if isinstance(read, web.Response) else await self._routed(request, read)

    async def _read_body(self, request: web.Request, event: bool = True) -> bytes | web.Response:
        """The body still arriving, read under ``body_timeout`` and ``max_body_bytes``, or
        the answer refusing it: 408 (and the connection closed), 413 or 400 (``event``: as
        :meth:`_refusal`)."""
        try:
            async with asyncio.timeout(self.body_timeout_s):
                return await request.read()
        except TimeoutError:
            return await self._timed_out(request, event)
        except web.HTTPRequestEntityTooLarge:
            limit = f"body exceeds {self.max_body_bytes} bytes"
            return self._refusal(event, 413, "too_large", limit)
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            HttpProcessingError,
            web.RequestPayloadError,
        ) as exc:
            why = f"could not read body: {type(exc).__name__}"
            return self._refusal(event, 400, "bad_request", why)

    async def _timed_out(self, request: web.Request, event: bool = True) -> web.Response:
        """The 408 of a body that stopped arriving, written now, then the connection closed.
        Returned to aiohttp as usual, the answer would be followed by its lingering close:
        up to ``lingering_time`` (10 s) of reading the rest of a body its client stopped
        sending, the connection slot held that long after ``body_timeout``. Closed here,
        once the 408 is in the transport (which sends what it buffered before it closes),
        aiohttp finds the response written and the connection closing, and does not linger.
        A client gone meanwhile only loses its answer (no 500, no error logged); one still
        sending, too slowly, may see the connection reset instead of the 408."""
        resp = self._refusal(
            event, 408, "body_timeout", f"body not received within {self.body_timeout_s:g}s"
        )
        resp.force_close()  # Connection: close
        with contextlib.suppress(ConnectionError):
            await resp.prepare(request)
            await resp.write_eof()
        protocol = request.protocol
        if protocol is not None:
            protocol.force_close()
        return resp

    def _now(self, resp: web.Response) -> asyncio.Future[web.Response]:
        """A future already holding ``resp`` (awaiting it does not suspend)."""
        fut: asyncio.Future[web.Response] = self.router._running_loop().create_future()
        fut.set_result(resp)
        return fut

    def _routed(
        self, request: web.Request, body: bytes, ready: bool = False
    ) -> asyncio.Future[web.Response]:
        """The rest of :meth:`events` once the body is read -- decode, parse, queue -- none of
        which waits: a future of the answer, set by the router once the event is durable
        (:class:`_Answer`; ``ready``: a 200 as a
        :class:`~scoperouter.runtime.http_ready.Ready`, which stands in for the
        ``web.Response`` on the daemon's server), or at once when it is refused or rejected
        here."""
        coding = request.headers.get("Content-Encoding")
        if coding:
            try:
                body = decode_body(body, coding, self.max_body_bytes)
            except BodyTooLarge as exc:
                return self._now(self._refused(413, "too_large", str(exc)))
            except BadEncoding as exc:
                return self._now(self._refused(400, "bad_request", str(exc)))
        event = fast_event(body, self.router.registry)  # the common canonical event
        if event is not None:  # (never a push envelope: its only keys are an event's)
            return self._submit(fast_inbound(_HTTP_INBOUND, data=body, event=event), False, ready)
        try:
            # read as a pushed or pulled event's bytes are (UTF-8, a BOM ignored): one body,
            # one verdict whatever the path
            obj = loads_event_json(body)
        except EventError as exc:
            return self._now(self._refused(400, "not_json", exc.detail[:200]))
        inbound: Inbound
        if isinstance(obj, dict) and "message" in obj and _envelope_like(obj):
            inbound_or_err = _from_envelope(obj)
            if isinstance(inbound_or_err, web.Response):
                m = self.router.metrics
                m.child(m.events_received, "push").inc()  # as the router counts its rejects
                m.events_rejected.labels("invalid_envelope").inc()
                return self._now(inbound_or_err)
            inbound = inbound_or_err
        else:
            inbound = Inbound("http", obj=obj)
        return self._submit(inbound, inbound.origin == "push", ready)

    def _submit(
        self, inbound: Inbound, push: bool, ready: bool = False
    ) -> asyncio.Future[web.Response]:
        """:meth:`Router.submit` answered as HTTP: the router settles :class:`_Answer`
        (after the commit), which sets the future aiohttp awaits -- no coroutine per event."""
        fut: asyncio.Future[web.Response] = self.router._running_loop().create_future()
        refused = self.router.enqueue(inbound, _Answer(fut, push, ready))
        if refused is not None:
            fut.set_result(outcome_response(refused, push=push))
        return fut

    async def backfill_start(self, request: web.Request) -> web.Response:
        """Authenticated like /events; the logic is ``backfill.http_api``. A refusal here
        is no event: not counted as one."""
        busy = self._over_cap(event=False)
        if busy is not None:
            return busy
        refused = await self._auth_refusal(request, event=False)
        if refused is not None:
            return refused
        if self.backfills is None:
            return _error(404, "backfills_disabled", "this server runs no backfills")
        # the body under the same limits as /events: a client that stops sending gets 408
        # (and its connection closed) after body_timeout, not a connection held for ever
        raw = await self._read_body(request, event=False)
        if isinstance(raw, web.Response):
            return raw
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "not_json", f"invalid JSON: {exc}"[:200])
        except RecursionError:
            return _error(400, "not_json", "invalid JSON: nested too deeply")
        status, answer = await self.backfills.start(body)
        return web.json_response(answer, status=status)

    async def backfill_get(self, request: web.Request) -> web.Response:
        busy = self._over_cap(event=False)
        if busy is not None:
            return busy
        refused = await self._auth_refusal(request, event=False)
        if refused is not None:
            return refused
        if self.backfills is None:
            return _error(404, "backfills_disabled", "this server runs no backfills")
        # this replica's backfill, else (shared state store) one running on another replica
        status, answer = await self.backfills.lookup(request.match_info["backfill_id"])
        return web.json_response(answer, status=status)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.router.ready:
            return _error(
                503, "not_ready", self.router.store_problem() or "starting or shutting down"
            )
        problems = [p for p in (check() for check in self._readiness) if p]
        if problems:
            return _error(503, "not_ready", "; ".join(problems))
        return web.json_response(
            {"status": "ready", "open_windows": self.router.open_window_count()}
        )

    async def metrics(self, request: web.Request) -> web.Response:
        # answered over max_connections too, as the health checks: an overload is when
        # monitoring needs it (a refused scrape was also counted as a rejected event)
        self.router.metrics.open_windows.set(self.router.open_window_count())
        return web.Response(
            body=self.router.metrics.render(), headers={"Content-Type": CONTENT_TYPE}
        )
