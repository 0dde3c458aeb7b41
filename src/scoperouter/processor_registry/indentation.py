"""Hints for indentation mistakes: find the line that moved, and say where it belongs.

PyYAML reports an indentation slip where parsing breaks, which is often the line *after*
the one that moved (``phase`` dedented by one space breaks on ``granularity``), and a key
dedented into its parent's mapping parses fine but fails the schema far from the cause.
So, for an error at line L, we re-indent one nearby line at a time -- L, then up to three
significant lines before it -- to a column its neighbours use, and re-parse. The first
candidate with which the whole file parses and passes the models (or, for a syntax error
in a file with other problems too, merely parses, trying only the columns of the adjacent
lines) is the line that moved; the error then points at it with the column that works.

Pure text in, hint out: nothing is written. Each candidate is a full re-parse, so files
over :data:`MAX_HINT_BYTES` are not tried and one search stops after :data:`MAX_TRIES`
candidates (a few milliseconds each for a registry of a few hundred lines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from scoperouter.processor_registry.yaml_positions import Pos, YamlLoadError, load_positioned

MAX_HINT_BYTES = 64_000
MAX_TRIES = 60  # re-parses per search
_BACK = 3  # significant lines before the error line that may be the one that moved
_CONTEXT = 12  # significant lines before whose columns are candidates


@dataclass(frozen=True)
class Hint:
    text: str  # appended to the error message, starting with "; hint: "
    pos: Pos  # the line that moved, at its first character


def _significant(lines: list[str]) -> list[int]:
    """0-based indices of lines holding YAML content (not blank, not a comment)."""
    return [i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _columns(line: str) -> list[int]:
    """Columns a neighbour offers: its indentation, and its content after ``- ``."""
    n = _indent(line)
    out = [n]
    rest = line[n:]
    if rest.startswith("- "):
        out.append(n + 2 + _indent(rest[2:]))
    if rest.rstrip().endswith(":"):
        out.append(out[-1] + 2)
    return out


def _tab_hint(lines: list[str], line: int) -> Hint | None:
    for k in (line - 1, line - 2):
        if 0 <= k < len(lines) and "\t" in lines[k][: len(lines[k]) - len(lines[k].lstrip())]:
            return Hint(
                f"; hint: line {k + 1} is indented with a tab; YAML indents with spaces only",
                Pos(k + 1, 1),
            )
    return None


def _candidates(lines: list[str], sig: list[int], k: int, wide: bool) -> Iterator[tuple[int, int]]:
    """(column, the 0-based line that uses it) to try for line ``k``, nearest first."""
    pos = sig.index(k)
    before = sig[max(0, pos - (_CONTEXT if wide else 1)) : pos]
    after = sig[pos + 1 : pos + 2]
    current = _indent(lines[k])
    seen = {current}
    offers: list[tuple[int, int]] = []
    for j in [*after, *reversed(before)]:
        for col in _columns(lines[j]):
            if col not in seen:
                seen.add(col)
                offers.append((col, j))
    offers.sort(key=lambda o: abs(o[0] - current))
    yield from offers


def _try(
    text_lines: list[str],
    line: int,
    accept: Callable[[object], bool] | None,
    wide: bool,
) -> Hint | None:
    tries = 0
    sig = _significant(text_lines)
    if line - 1 not in sig:
        later = [i for i in sig if i >= line - 1]
        if not later:
            return None
        line = later[0] + 1
    pos = sig.index(line - 1)
    for k in [sig[i] for i in range(pos, max(-1, pos - _BACK - 1), -1)]:
        current = _indent(text_lines[k])
        for col, like in _candidates(text_lines, sig, k, wide):
            tries += 1
            if tries > MAX_TRIES:
                return None
            moved = list(text_lines)
            moved[k] = " " * col + text_lines[k].lstrip(" ")
            try:
                doc = load_positioned("".join(moved))
            except YamlLoadError:
                continue
            if accept is not None and not accept(doc.data):
                continue
            return Hint(
                f"; hint: line {k + 1} looks mis-indented ({current} spaces); with {col}, "
                f"like line {like + 1}, the file {'parses' if accept is None else 'is valid'}",
                Pos(k + 1, current + 1),
            )
    return None


def syntax_hint(
    text: str, line: int, accept: Callable[[object], bool] | None = None
) -> Hint | None:
    """A hint for a YAML syntax error reported at 1-based ``line``, or None."""
    if len(text) > MAX_HINT_BYTES:
        return None
    lines = text.splitlines(keepends=True)
    tab = _tab_hint(lines, line)
    if tab is not None:
        return tab
    if accept is not None:
        strict = _try(lines, line, accept, wide=True)
        if strict is not None:
            return strict
    return _try(lines, line, None, wide=False)


def schema_hint(text: str, line: int, accept: Callable[[object], bool]) -> Hint | None:
    """A hint for a schema error at ``line`` that re-indenting one line fixes, or None."""
    if len(text) > MAX_HINT_BYTES:
        return None
    return _try(text.splitlines(keepends=True), line, accept, wide=True)
