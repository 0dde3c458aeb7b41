"""Which authentication ``serve`` applies to ``POST /events`` and ``POST /backfills``, and
from where: shown by ``serve --print-config`` and logged when the daemon starts.

Invariant: a shared bearer token from ``--bearer-token`` / ``SCOPEROUTER_BEARER_TOKEN``
wins over ``routes.yaml`` ``server.auth`` (oidc included: :attr:`AuthMode.overrides` names
what it replaced, and the start logs a WARNING); a bearer token is never shown, only
``***``. Serving with no authentication on a bind address other than loopback logs a
WARNING (anyone who reaches the port may post events and start backfills).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from scoperouter.processor_registry.model_server import AuthSpec
from scoperouter.processor_registry.target_checks import is_loopback

__all__ = ["AuthMode", "describe_auth", "is_loopback", "log_auth"]

logger = logging.getLogger("scoperouter.runtime.daemon")

MASK = "***"


@dataclass(frozen=True)
class AuthMode:
    """``mode``: ``oidc``, ``bearer``, ``none`` (or ``custom``: a verifier handed in);
    ``source``: where it comes from; ``shown``: its settings as printed (no secret);
    ``overrides``: the ``server.auth`` mode a bearer token from the flag or the environment
    replaced, if any."""

    mode: str
    source: str
    shown: dict[str, Any] = field(default_factory=dict)
    overrides: str | None = None

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"mode": self.mode, **self.shown}
        if self.overrides is not None:
            value["overrides"] = self.overrides
        return {"value": value, "source": self.source}


def describe_auth(bearer_token: str | None, bearer_source: str, auth: AuthSpec | None) -> AuthMode:
    """The auth ``serve`` applies: a bearer token given by flag or environment
    (``bearer_source``), else ``server.auth``, else none."""
    configured = None
    if auth is not None:
        configured = "oidc" if auth.oidc is not None else "bearer"
    if bearer_token:
        overrides = f"server.auth.{'oidc' if configured == 'oidc' else 'bearer_token'}"
        return AuthMode(
            "bearer",
            bearer_source,
            {"bearer_token": MASK},
            overrides if configured is not None else None,
        )
    if auth is not None and auth.oidc is not None:
        shown: dict[str, Any] = {"audience": auth.oidc.audience}
        if auth.oidc.service_account:
            shown["service_account"] = auth.oidc.service_account
        return AuthMode("oidc", "server.auth.oidc", shown)
    if auth is not None and auth.bearer_token is not None:
        return AuthMode("bearer", "server.auth.bearer_token", {"bearer_token": MASK})
    return AuthMode("none", "default")


def log_auth(auth: AuthMode, host: str) -> None:
    """The start's auth lines: INFO the mode; WARNING when a bearer token from the flag or
    the environment replaced ``server.auth.oidc`` (or a configured token), and when nothing
    authenticates a server bound beyond loopback."""
    logger.info(
        "HTTP ingress authentication: %s (%s)",
        auth.mode,
        auth.source,
        extra={"auth_mode": auth.mode, "auth_source": auth.source},
    )
    if auth.overrides is not None:
        logger.warning(
            "%s replaces %s configured in routes.yaml: POST /events and POST /backfills accept "
            "the shared bearer token instead%s",
            auth.source,
            auth.overrides,
            " of verifying OIDC ID tokens" if auth.overrides.endswith("oidc") else "",
            extra={"auth_mode": auth.mode, "auth_overrides": auth.overrides},
        )
    if auth.mode == "none" and not is_loopback(host):
        logger.warning(
            "no authentication on %s, which is not a loopback address: anyone who reaches "
            "the port may POST /events and POST /backfills; set server.auth (oidc or "
            "bearer_token) or SCOPEROUTER_BEARER_TOKEN, or bind 127.0.0.1 (unless a proxy in "
            "front authenticates every request, e.g. Cloud Run IAM)",
            host or "every interface",
            extra={"auth_mode": "none", "host": host},
        )
