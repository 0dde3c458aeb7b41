"""Checks of the registry's targets for ``validate``: ``${ENV}`` references (malformed, or
unset here -- a warning, since ``serve`` resolves them at start-up), HTTP URLs, and each
target's format and mapping (:mod:`~scoperouter.processor_registry.target_format`).

Invariant: pure; every finding carries the YAML path the caller positions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

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


def _strings(data: object, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))


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
    found += [Finding(p, m, "bad_target_format") for p, m in target_issues(spec)]
    return found
