"""The HTTP sink: POSTs what the target's format says (docs/targets.md) -- the SPEC Pub/Sub
push envelope by default, the bare trigger, or a mapped body with its headers (optionally
wrapped in the envelope) -- and turns the answer into success or a :class:`DispatchError`.

Invariant: 2xx is success; 408, 429 and 5xx, timeouts before the status and connection
errors are retryable (once come, the status decides: an error answer's body is only
logged, read for at most :data:`ANSWER_READ_S` and within the target's timeout); any
other status (3xx included: redirects are not followed), a mapping that cannot render
and a request the HTTP client refuses to write (a header value with a control character)
are permanent, the latter two local (nothing was sent); a 429 or 503 carries its
``Retry-After`` seconds on the error. With an ``audience``, a cached ID token is sent only
until :data:`TOKEN_REUSE_S` after its fetch and never within :data:`TOKEN_EXPIRY_MARGIN_S`
of the ``exp`` it states. A 401 answered to a token may mean that token expired or was
revoked, not only a refusal: the send fetches a new token and tries once more with it
(when the fetch gives back the same token, the 401 stands: permanent).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.target_format import Shaper
from scoperouter.processor_registry.template import RenderError
from scoperouter.runtime.oidc import unverified_exp
from scoperouter.runtime.payloads import trigger_attributes, trigger_bytes, trigger_json
from scoperouter.runtime.redact import MASK, redact_url, scrub, url_secrets

_JSON_HEADERS = {"Content-Type": "application/json"}
# shorter header values (a flag, a count) are not masked in error texts: they would mangle them
_MIN_HEADER_SECRET = 8
# a Google ID token lasts one hour: one fetched is sent for at most this long after its
# fetch, and never within TOKEN_EXPIRY_MARGIN_S of its own exp (a token source may hand out
# one well into its hour, e.g. one it cached; and clocks differ)
TOKEN_REUSE_S = 3000.0
TOKEN_EXPIRY_MARGIN_S = 60.0
# how much of a target's error answer is kept (logs, triggers.error, dead letters)
ANSWER_KEPT_CHARS = 200
# how long an error answer's body is read at most (its status decides; the body is for the
# log): a body that stalls must not turn a 400 into a retried timeout
ANSWER_READ_S = 1.0

logger = logging.getLogger("scoperouter.runtime")


def token_reusable_until(token: str, fetched_at: float) -> float:
    """Until when (epoch seconds) an ID token fetched at ``fetched_at`` may be sent: the
    earlier of ``fetched_at + TOKEN_REUSE_S`` and its ``exp`` (read without a signature
    check) less ``TOKEN_EXPIRY_MARGIN_S``; a token stating no ``exp``: the former."""
    until = fetched_at + TOKEN_REUSE_S
    exp = unverified_exp(token)
    if exp is not None:
        until = min(until, exp - TOKEN_EXPIRY_MARGIN_S)
    return until


def retry_after_s(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header in its delta-seconds form (whole, not negative);
    None for none or another form (an HTTP date is not honoured: clocks differ)."""
    text = (value or "").strip()
    return float(text) if text.isascii() and text.isdigit() else None


@dataclass
class _Answer:
    """What one POST got back so far: its status (0: none yet) and, unless 2xx, the start
    of its body and whether there was more (or the read stopped)."""

    status: int = 0
    raw: bytes = b""
    more: bool = False
    retry_after: str | None = None  # its Retry-After header


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url  # sent to, never stored or logged: see runtime.redact
        self.shaper = shaper or Shaper("envelope", None, wrap=True)
        self.retry_on = frozenset(retry_on)
        self.name = f"http:{redact_url(url)}"
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session_factory = session_factory
        self.audience = audience
        self.subscription = subscription
        self._token: tuple[str, float] | None = None  # (ID token, sent until: epoch s)
        self._fetching: asyncio.Future[str] | None = None
        self._clock = clock  # wall time: a token's exp is

    async def _id_token(self, refused: str | None = None) -> str:
        """A Google-signed identity token for ``audience``, cached until
        :func:`token_reusable_until` (at most ~50 min, never into its last minute);
        ``refused``: a token the target answered 401, never handed out again. One fetch at
        a time (single-flight): a send that gives up waiting (its timeout) leaves the fetch
        running for the next send instead of starting another thread."""
        assert self.audience is not None
        cached = self._token
        if cached is not None and cached[0] == refused:
            self._token = cached = None
        if cached is not None and cached[1] > self._clock():
            return cached[0]
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
            self._token = (token, token_reusable_until(token, self._clock()))
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
        ans = _Answer()
        try:
            # the target's timeout bounds the whole send, the ID-token fetch included
            async with asyncio.timeout(self.timeout.total):
                token = await self._id_token() if self.audience else None
                if token is not None:
                    sent.append(token)
                await self._post(data, headers, token, self._keep(sent), ans)
                if ans.status == 401 and token is not None:
                    # expired (a token source's clock, one it cached) or revoked: once more
                    # with a new token; the same token again: the 401 stands
                    fresh = await self._id_token(refused=token)
                    if fresh != token:
                        sent.append(fresh)
                        logger.info(
                            "%s answered 401 to an ID token; sending again with a new one",
                            self.name,
                            extra={"processor": trigger.processor, "target": self.name,
                                   "trigger_id": trigger.trigger_id},
                        )  # fmt: skip
                        ans = _Answer()
                        await self._post(data, headers, fresh, self._keep(sent), ans)
        except TimeoutError:
            if not ans.status:  # no answer in time
                raise DispatchError(
                    trigger.processor, self.name, "timeout", trigger_id=trigger.trigger_id
                ) from None
            ans.more = True  # the timeout ended the read of an answer: its status decides
        except ValueError as exc:
            if isinstance(exc, aiohttp.ClientError):  # InvalidURL: as any client error
                raise self._client_error(trigger, exc, sent) from None
            # the HTTP client refused to write the request (a header value holding a control
            # character no check caught, text it cannot encode): nothing was sent, and no
            # retry sends it -- permanent, and the target's circuit ignores it
            raise self._scrubbed(
                DispatchError(
                    trigger.processor,
                    self.name,
                    f"the HTTP client refused to build the request: {exc}",
                    retryable=False,
                    trigger_id=trigger.trigger_id,
                    local=True,
                ),
                sent,
            ) from None
        except Exception as exc:  # client and socket errors, token fetch failures and the like
            # ``from None``: the original exception's text may carry the URL's credentials
            raise self._client_error(trigger, exc, sent) from None
        status = ans.status
        if 200 <= status < 300:
            return
        answer = self._kept_answer(ans.raw, ans.more, sent)
        retryable = status in (408, 429) or status >= 500 or (status in self.retry_on)
        raise self._scrubbed(
            DispatchError(
                trigger.processor,
                self.name,
                f"HTTP {status}: {answer}",
                retryable=retryable,
                trigger_id=trigger.trigger_id,
                retry_after_s=retry_after_s(ans.retry_after) if status in (429, 503) else None,
            ),
            sent,
        )

    def _client_error(self, trigger: Trigger, exc: Exception, sent: list[str]) -> DispatchError:
        """A retryable error described by ``exc`` (a client or socket error), scrubbed."""
        return self._scrubbed(
            DispatchError.from_exception(
                trigger.processor, self.name, exc, trigger_id=trigger.trigger_id
            ),
            sent,
        )

    def _secrets(self, sent: list[str]) -> list[str]:
        """What an answer must not show: the URL's credentials and the sent header values
        and ID token of :data:`_MIN_HEADER_SECRET` characters or more; longest first."""
        found = {v for v in sent if len(v) >= _MIN_HEADER_SECRET} | set(url_secrets(self.url))
        return sorted(found, key=len, reverse=True)

    def _keep(self, sent: list[str]) -> int:
        """How many bytes of an error answer to read: the kept characters and, past them,
        the longest secret (a secret straddling the cut is then read whole and masked)."""
        longest = max((len(s.encode()) for s in self._secrets(sent)), default=0)
        return 4 * ANSWER_KEPT_CHARS + longest  # UTF-8: up to 4 bytes a character

    def _kept_answer(self, raw: bytes, more: bool, sent: list[str]) -> str:
        """The start of an error answer, secrets masked *before* the cut to
        :data:`ANSWER_KEPT_CHARS`; when the answer was cut, a trailing prefix of a secret at
        the cut is masked too (its rest lay past the bytes read)."""
        text = scrub(raw.decode(errors="replace"), self.url)
        secrets = self._secrets(sent)
        for value in secrets:
            text = text.replace(value, MASK)
        if len(text) > ANSWER_KEPT_CHARS:
            text, more = text[:ANSWER_KEPT_CHARS], True
        if more:
            text = text.rstrip("\ufffd")  # a character cut by the byte limit
            # the URL itself is not a secret, its credentials (listed apart) are
            pieces = [s for s in secrets if s != self.url]
            cut = max(
                (k for s in pieces for k in range(len(s) - 1, 0, -1) if text.endswith(s[:k])),
                default=0,
            )
            if cut:
                text = text[:-cut] + MASK
        return text

    async def _post(
        self, data: bytes, headers: dict[str, str], token: str | None, keep: int, ans: _Answer
    ) -> None:
        """One POST of ``data``, its answer kept in ``ans`` as it comes: the status and,
        unless 2xx, the first ``keep`` bytes of the body read within :data:`ANSWER_READ_S`
        and whether there were more (or the read stopped: a stalled body)."""
        if token is not None:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        session = self._session_factory()
        # no redirect is followed: aiohttp turns a POST answered 301/302/303 into a bodiless
        # GET (whose 2xx would count as delivered) and would carry the mapped headers (API
        # keys) to the new location; a 3xx is a permanent error
        async with session.post(
            self.url, data=data, headers=headers, timeout=self.timeout, allow_redirects=False
        ) as resp:
            ans.status = resp.status
            if 200 <= resp.status < 300:
                return
            ans.retry_after = resp.headers.get("Retry-After")
            try:
                async with asyncio.timeout(ANSWER_READ_S):
                    while len(ans.raw) <= keep:
                        chunk = await resp.content.read(keep + 1 - len(ans.raw))
                        if not chunk:
                            break
                        ans.raw += chunk
            except TimeoutError:  # the body stalls: what came of it is kept
                ans.more = True
            if len(ans.raw) > keep:
                ans.raw, ans.more = ans.raw[:keep], True

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
            retry_after_s=exc.retry_after_s,
        )

    async def close(self) -> None:
        return None
