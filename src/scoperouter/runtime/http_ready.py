"""The daemon's accepted answers as ready bytes (:class:`Ready`), and their JSON.

Invariant: a :class:`Ready` writes exactly the bytes aiohttp writes for the
``web.Response`` of the same JSON body to a keep-alive HTTP/1.1 request -- status line,
``Content-Type``, ``Content-Length``, ``Date``, ``Server``, in that order, no
``Connection`` header -- through the request's own writer (which counts the bytes, raises
on a closed connection and waits while the transport's buffer is full); it is only used
where nothing else reads the response: no access log, no response signal
(``tests/runtime/test_http_ready.py`` compares the bytes).
"""

from __future__ import annotations

from collections.abc import Awaitable
from json.encoder import encode_basestring_ascii
from typing import Any

from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE


class Ready:
    """A 200 answer written as the bytes aiohttp writes for its ``web.Response`` of the
    same body -- status line, ``Content-Type``, ``Content-Length``, ``Date``, ``Server``, in
    that order, no ``Connection`` header (so: a keep-alive HTTP/1.1 request only) -- with
    what aiohttp's server asks of a response (``prepare``, ``write_eof``, ``keep_alive``),
    without the response's header multidict, its preparation steps and their coroutines per
    event. Only where nothing else reads the response: no access log, no response signal
    (the daemon's server, ``IngressApp.route_events_first``)."""

    __slots__ = ("body",)
    __http_exception__ = False  # (aiohttp asks)
    keep_alive = True
    status = 200

    def __init__(self, body: str) -> None:
        self.body = body  # JSON, ASCII

    def prepare(self, request: web.BaseRequest) -> Awaitable[None]:
        """Hands the whole answer to the request's writer (which counts its bytes, raises
        on a closed connection and waits while the transport's buffer is full)."""
        body = self.body
        return request.writer.write_eof(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nDate: {rfc822_formatted_time()}\r\n"
            f"Server: {SERVER_SOFTWARE}\r\n\r\n{body}".encode()
        )

    def write_eof(self) -> Awaitable[None]:
        return _DONE  # (prepare wrote it all)


class _Done:
    """An awaitable that is done at once."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_DONE = _Done()


def ok_text(status: str, event_id: str, triggers: int) -> str:
    """The JSON of an accepted or duplicate answer (json_response's text, without building
    and encoding a dict)."""
    return (
        f'{{"status": "{status}", "event_id": {encode_basestring_ascii(event_id)}, '
        f'"triggers": {triggers}}}'
    )
