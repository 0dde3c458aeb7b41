"""Credentials in target URLs never leave the sink: a redacted form for names, logs,
stored errors and dead letters.

Invariant: :func:`scrub` removes every credential :func:`url_secrets` finds in a URL --
userinfo (user and password), query-string values -- in raw and percent-decoded form,
from any text (an exception message, a target's answer). The real URL is used only to
send the request.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

MASK = "***"
_MIN_SECRET = 3  # shorter values (``a=1``) are not worth masking and would mangle text


def redact_url(url: str) -> str:
    """``https://user:pw@host/p?token=x`` -> ``https://***@host/p?token=***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    userinfo = f"{MASK}@" if "@" in parts.netloc else ""
    query = "&".join(f"{k}={MASK}" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, f"{userinfo}{host}{port}", parts.path, query, ""))


def url_secrets(url: str) -> tuple[str, ...]:
    """The credential strings of ``url`` (raw and percent-decoded), longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return (url,)
    found: set[str] = {url}
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found.add(userinfo)
        found.update(userinfo.split(":", 1))
    for piece in parts.query.split("&"):
        if "=" in piece:
            found.add(piece.split("=", 1)[1])
    if parts.fragment:
        found.add(parts.fragment)
    found |= {unquote(s) for s in found}
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True))


def scrub(text: str, url: str) -> str:
    """``text`` with the URL in redacted form and every credential of it masked."""
    if not text:
        return text
    text = text.replace(url, redact_url(url))
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return text
