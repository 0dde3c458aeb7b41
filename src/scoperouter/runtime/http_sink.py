"""The HTTP sink: POSTs what the target's format says (docs/targets.md) -- the SPEC Pub/Sub
push envelope by default, the bare trigger, or a mapped body with its headers (optionally
wrapped in the envelope) -- and turns the answer into success or a :class:`DispatchError`.

Invariant: 2xx is success; 408, 429 and 5xx, timeouts and connection errors are
retryable; any other status (3xx included: redirects are not followed), and a mapping that
cannot render, is permanent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable

import aiohttp

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.target_format import Shaper
from scoperouter.processor_registry.template import RenderError
from scoperouter.runtime.payloads import trigger_attributes, trigger_bytes, trigger_json
from scoperouter.runtime.redact import MASK, redact_url, scrub

_JSON_HEADERS = {"Content-Type": "application/json"}
# shorter header values (a flag, a count) are not masked in error texts: they would mangle them
_MIN_HEADER_SECRET = 8


class HttpSink:
    """POSTs the Pub/Sub push envelope (or, per ``shaper``, the bare trigger or a mapped
    body with its headers). 2xx is success; 408, 429 and 5xx, timeouts and connection
    errors are retried; other 4xx are permanent (dead-letter at once), and so is a
    mapping that cannot render for this trigger."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        session_factory: Callable[[], aiohttp.ClientSession],
        audience: str | None = None,
        subscription: str = "projects/scoperouter/subscriptions/scoperouter",
        shaper: Shaper | None = None,
        retry_on: tuple[int, ...] = (),
    ) -> None:
        self.url = url  # sent to, never stored or logged: see runtime.redact
        self.shaper = shaper or Shaper("envelope", None, wrap=True)
        self.retry_on = frozenset(retry_on)
        self.name = f"http:{redact_url(url)}"
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session_factory = session_factory
        self.audience = audience
        self.subscription = subscription
        self._token: tuple[str, float] | None = None
        self._fetching: asyncio.Future[str] | None = None

    async def _id_token(self) -> str:
        """A Google-signed identity token for ``audience`` (cached ~50 min). One fetch at a
        time (single-flight): a send that gives up waiting (its timeout) leaves the fetch
        running for the next send instead of starting another thread."""
        assert self.audience is not None
        if self._token is not None and self._token[1] > time.time():
            return self._token[0]
        import google.auth.transport.requests
        import google.oauth2.id_token

        audience = self.audience

        def fetch() -> str:
            req = google.auth.transport.requests.Request()
            tok: str = google.oauth2.id_token.fetch_id_token(req, audience)  # type: ignore[no-untyped-call]
            return tok

        fut = self._fetching
        if fut is None or fut.done():
            fut = self._fetching = asyncio.get_running_loop().run_in_executor(None, fetch)
            # retrieved even when every waiter timed out
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        token = await asyncio.shield(fut)
        if fut is self._fetching:
            self._token = (token, time.time() + 3000)
        return token

    def _request(
        self, trigger: Trigger, message_id: str, body: bytes | None
    ) -> tuple[bytes, dict[str, str]]:
        """The request body and headers for ``trigger`` (raises RenderError)."""
        shaper = self.shaper
        as_json = trigger_json(trigger) if shaper.body is not None or shaper.headers else {}
        payload = shaper.data(as_json, body or trigger_bytes(trigger))
        headers = (
            {**shaper.header_values(as_json), **_JSON_HEADERS} if shaper.headers else _JSON_HEADERS
        )
        if not shaper.wrap:
            return payload, headers
        envelope = {
            "message": {
                "data": base64.b64encode(payload).decode(),
                "attributes": trigger_attributes(trigger),
                "messageId": message_id,
                "message_id": message_id,
            },
            "subscription": self.subscription,
        }
        return json.dumps(envelope, separators=(",", ":")).encode(), headers

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        try:
            data, headers = self._request(trigger, message_id, body)
        except RenderError as exc:
            raise DispatchError(
                trigger.processor,
                self.name,
                str(exc),
                retryable=False,
                trigger_id=trigger.trigger_id,
                local=True,
            ) from exc
        # what the request carries besides its URL: a mapped header's ${ENV} API key, the
        # ID token; a target's error answer may quote it back ("invalid API key ...")
        sent: list[str] = [v for k, v in headers.items() if k not in _JSON_HEADERS]
        try:
            # the target's timeout bounds the whole send, the ID-token fetch included
            async with asyncio.timeout(self.timeout.total):
                if self.audience:
                    token = await self._id_token()
                    sent.append(token)
                    headers = {**headers, "Authorization": f"Bearer {token}"}
                session = self._session_factory()
                # no redirect is followed: aiohttp turns a POST answered 301/302/303 into a
                # bodiless GET (whose 2xx would count as delivered) and would carry the
                # mapped headers (API keys) to the new location; a 3xx is a permanent error
                async with session.post(
                    self.url,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                ) as resp:
                    if 200 <= resp.status < 300:
                        return
                    answer = (await resp.read())[:200].decode(errors="replace")
                    retryable = (
                        resp.status in (408, 429)
                        or resp.status >= 500
                        or (resp.status in self.retry_on)
                    )
                    raise DispatchError(
                        trigger.processor,
                        self.name,
                        f"HTTP {resp.status}: {answer}",
                        retryable=retryable,
                        trigger_id=trigger.trigger_id,
                    )
        except DispatchError as exc:
            raise self._scrubbed(exc, sent) from None
        except TimeoutError:
            raise DispatchError(
                trigger.processor, self.name, "timeout", trigger_id=trigger.trigger_id
            ) from None
        except Exception as exc:  # client and socket errors, token fetch failures and the like
            # ``from None``: the original exception's text may carry the URL's credentials
            raise self._scrubbed(
                DispatchError.from_exception(
                    trigger.processor, self.name, exc, trigger_id=trigger.trigger_id
                ),
                sent,
            ) from None

    def _scrubbed(self, exc: DispatchError, sent: list[str]) -> DispatchError:
        detail = scrub(exc.detail, self.url)
        for value in sorted(sent, key=len, reverse=True):
            if len(value) >= _MIN_HEADER_SECRET:
                detail = detail.replace(value, MASK)
        return DispatchError(
            exc.processor,
            self.name,
            detail,
            retryable=exc.retryable,
            trigger_id=exc.trigger_id,
            local=exc.local,
        )

    async def close(self) -> None:
        return None
