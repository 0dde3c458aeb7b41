"""Checks of the registry's targets for ``validate``: ``${ENV}`` references (malformed, or
unset here -- a warning, since ``serve`` resolves them at start-up), HTTP URLs, an HTTP
target's ``audience`` against its URL (``insecure_audience``: the ID token would travel in
clear text or to another origin than the one it is for), and each target's format and
mapping (:mod:`~scoperouter.processor_registry.target_format`).

Invariant: pure; every finding carries the YAML path the caller positions.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from scoperouter.errors import Severity
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.target_format import target_issues
from scoperouter.processor_registry.yaml_positions import YamlPath

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Finding:
    path: YamlPath
    message: str
    code: str
    severity: Severity = "error"


def _strings(
    data: object, path: YamlPath, template: bool = False, table: bool = False
) -> Iterator[tuple[YamlPath, str]]:
    """Every string of ``data`` that serve expands ``${VAR}`` in: inside a target's
    ``mapping`` (``template``), not a ``$$`` escape nor anything under ``$literal``, which
    the template language sends verbatim; in a ``$lookup`` table's values (``table``:
    literals, where no key is an operator) every string but a ``$$`` escape."""
    if isinstance(data, str):
        if not (template and data.startswith("$$")):
            yield path, data
    elif isinstance(data, dict):
        for k, v in data.items():
            if template and not table and k == "$literal":
                continue
            if template and not table and k == "$lookup" and isinstance(v, list):
                for i, a in enumerate(v):
                    if i == 1 and isinstance(a, dict):
                        for key, value in a.items():
                            yield from _strings(value, (*path, k, i, key), True, True)
                    else:
                        yield from _strings(a, (*path, k, i), True)
                continue
            inside = template or (k == "mapping" and path[-1:] == ("target",))
            yield from _strings(v, (*path, k), inside, table)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i), template, table)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a URL's host) is this machine only: 127.0.0.0/8,
    ::1, localhost. An empty host, ``0.0.0.0`` or any other name: not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to a public interface


def _expanded(text: str, env: Mapping[str, str]) -> str | None:
    """``text`` with its ``${VAR}`` / ``${VAR:-default}`` resolved from ``env``; None when
    one is unset without a default (env_unset reports it)."""
    missing = False

    def one(m: re.Match[str]) -> str:
        nonlocal missing
        value = env.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                missing = True
                return ""
            return m.group(2)
        return value

    out = _ENV_REF.sub(one, text)
    return None if missing else out


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port with the scheme's default filled in) of an http(s) URL; None for
    anything else (an audience may be an arbitrary string)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def _audience_findings(root: YamlPath, target: object, env: Mapping[str, str]) -> Iterator[Finding]:
    """``insecure_audience``: an HTTP target whose ID token (``audience``) would go over
    plain http to a host other than loopback, or to another origin than the audience's
    when the audience is a URL (a Cloud Run service URL, usually)."""
    http = target.get("http") if isinstance(target, dict) else None
    if not isinstance(http, dict):
        return
    url, audience = http.get("url"), http.get("audience")
    if not isinstance(url, str) or not isinstance(audience, str):
        return
    url_x, audience_x = _expanded(url, env), _expanded(audience, env)
    if url_x is None or audience_x is None:
        return
    where = _origin(url_x)
    if where is None:
        return  # bad_url
    path = (*root, "http", "audience")
    if where[0] == "http" and not is_loopback(where[1]):
        yield Finding(
            path,
            f"the ID token for audience {audience_x!r} would be sent in clear text (plain "
            f"http:// to {where[1]}): use an https:// URL",
            code="insecure_audience",
            severity="warning",
        )
        return
    aud = _origin(audience_x)
    if aud is not None and aud != where:
        yield Finding(
            path,
            f"the ID token for audience {audience_x!r} would be sent to another origin "
            f"({where[0]}://{where[1]}:{where[2]}): the holder of that service could replay "
            "it to the audience's; point url and audience at the same service",
            code="insecure_audience",
            severity="warning",
        )


def target_findings(spec: RoutesSpec, data: object, env: Mapping[str, str] | None) -> list[Finding]:
    """``${VAR}`` references in targets and the server section (where interpolation applies)."""
    envmap: Mapping[str, str] = os.environ if env is None else env
    data = data if isinstance(data, dict) else {}
    found: list[Finding] = []
    roots: list[tuple[YamlPath, object]] = [
        (("defaults", "target"), (data.get("defaults") or {}).get("target")),
        (("server",), data.get("server")),
    ]
    procs = data.get("processors") or {}
    roots += [
        (("processors", n, "target"), (procs.get(n) or {}).get("target")) for n in spec.processors
    ]
    for root, sub in roots:
        for path, text in _strings(sub, root):
            for k in (m.start() for m in re.finditer(r"\$\{", text)):
                m = _ENV_REF.match(text, k)
                if m is None:
                    found.append(
                        Finding(
                            path,
                            f"malformed environment reference at {text[k : k + 20]!r}: use ${{NAME}} "
                            "or ${NAME:-default}",
                            code="bad_env_ref",
                        )
                    )
                elif m.group(2) is None and envmap.get(m.group(1)) is None:
                    found.append(
                        Finding(
                            path,
                            f"environment variable {m.group(1)} is not set here; serve fails at "
                            f"start-up unless it is (or write ${{{m.group(1)}:-default}})",
                            code="env_unset",
                            severity="warning",
                        )
                    )
            if (
                path[-2:] == ("http", "url")
                and not text.startswith("${")
                and not re.match(r"^https?://", text)
            ):
                found.append(
                    Finding(
                        path, f"URL must start with http:// or https:// (got {text!r})", "bad_url"
                    )
                )
        if root[-1] == "target":
            found += _audience_findings(root, sub, envmap)
    found += [Finding(p, m, "bad_target_format") for p, m in target_issues(spec)]
    return found
