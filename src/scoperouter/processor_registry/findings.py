"""Positioned findings of the semantic checks, and "did you mean" suggestions.

Shared by :mod:`semantic` and :mod:`source_checks`: a :class:`Report` collects
:class:`~scoperouter.errors.ConfigIssue` values positioned through the document the spec
was loaded from.
"""

from __future__ import annotations

import difflib

from scoperouter.errors import ConfigIssue, Severity
from scoperouter.processor_registry.yaml_positions import PositionedDocument, YamlPath


def close_match(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest choice to a misspelled name, if any is close enough."""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    """`` (did you mean 'x'?)`` for a close match, else the list of choices."""
    options = sorted(choices)
    close = close_match(name, options)
    if close:
        return f" (did you mean {close!r}?)"
    if not options:
        return " (none declared)"
    shown = ", ".join(options[:8]) + (", ..." if len(options) > 8 else "")
    return f" (declared: {shown})"


class Report:
    def __init__(self, doc: PositionedDocument, file: str) -> None:
        self.doc = doc
        self.file = file
        self.issues: list[ConfigIssue] = []

    def add(
        self,
        path: YamlPath,
        message: str,
        *,
        code: str,
        severity: Severity = "error",
        key: bool = False,
    ) -> None:
        pos = self.doc.locate(path, key=key)
        self.issues.append(
            ConfigIssue(
                message,
                file=self.file,
                line=pos.line,
                column=pos.column,
                path=path,
                severity=severity,
                code=code,
            )
        )
