"""Silencing ``validate`` warnings, per place or per code (errors are never silenced).

Three ways, all naming warning codes from
:data:`~scoperouter.processor_registry.models.WARNING_CODES`:

* a YAML comment on the line a warning points at: ``# scoperouter: ignore[env_unset]``
  (several codes separated by commas) -- like ``# noqa``, it silences that code on that
  line only;
* ``validate: {ignore: [code, ...]}`` at the top of ``routes.yaml`` -- the code everywhere
  in that file;
* ``scoperouter validate --ignore CODE`` (repeatable) -- the code in every file checked.

A comment naming something that is not a warning code (a typo, or an error code, which
cannot be silenced) is itself a warning, ``bad_ignore``, so a silencer cannot rot unseen.
Silenced warnings are not dropped: :func:`apply` returns them apart, and ``validate``
counts them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from scoperouter.errors import ConfigIssue
from scoperouter.processor_registry.models import WARNING_CODES

# a comment: '#' at the start of a line or after whitespace (a '#' inside a plain scalar
# needs no space before it, so "a#b" is not a comment)
_COMMENT = re.compile(r"(?:^|\s)#\s*scoperouter:\s*ignore\[([^\]]*)\]")


@dataclass(frozen=True)
class Ignored:
    """The outcome of :func:`apply`: what is still reported, and what was silenced."""

    issues: tuple[ConfigIssue, ...]
    silenced: tuple[ConfigIssue, ...]


def comment_codes(text: str) -> dict[int, tuple[int, tuple[str, ...]]]:
    """1-based line -> (1-based column of the comment, codes) for every ignore comment."""
    out: dict[int, tuple[int, tuple[str, ...]]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if "scoperouter" not in line:
            continue
        m = _COMMENT.search(line)
        if m is not None:
            codes = tuple(c.strip() for c in m.group(1).split(",") if c.strip())
            out[n] = (line.index("#", m.start()) + 1, codes)
    return out


def apply(
    issues: Iterable[ConfigIssue],
    *,
    text: str | None,
    file: str,
    codes: Iterable[str] = (),
) -> Ignored:
    """Split ``issues`` into reported and silenced; add ``bad_ignore`` warnings."""
    everywhere = frozenset(codes)
    per_line = comment_codes(text) if text is not None else {}
    kept: list[ConfigIssue] = []
    silenced: list[ConfigIssue] = []
    for issue in issues:
        on_line = per_line.get(issue.line or 0, (0, ()))[1]
        if issue.severity == "warning" and (issue.code in everywhere or issue.code in on_line):
            silenced.append(issue)
        else:
            kept.append(issue)
    for line, (col, names) in sorted(per_line.items()):
        for name in names:
            if name not in WARNING_CODES:
                why = (
                    "not a warning code (errors cannot be silenced)"
                    if name.isidentifier()
                    else "not a code"
                )
                kept.append(
                    ConfigIssue(
                        f"ignore[{name}]: {why}; warning codes: {', '.join(WARNING_CODES)}",
                        file=file,
                        line=line,
                        column=col,
                        severity="warning",
                        code="bad_ignore",
                    )
                )
    kept.sort(key=lambda i: (i.line or 0, i.column or 0))
    return Ignored(tuple(kept), tuple(silenced))
