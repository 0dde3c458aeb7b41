"""SQL string literals in Python sources, found with :mod:`ast`.

Invariant: a literal is SQL when it contains the keywords SELECT and FROM (or MERGE / INSERT
/ DELETE); every template hole -- an f-string expression, a ``str.format`` field -- becomes
a placeholder identifier, so a table named at run time comes back unresolved rather than
guessed. Literals adjacent in the source are one literal (Python joins them).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from scoperouter.lineage.sql import PLACEHOLDER

# Selects candidate literals for the parser; the SQL itself is parsed by sqlglot.
_SQL_HINT = re.compile(
    r"\b(select\b[\s\S]*\bfrom|merge\s+(into\s+)?\S|insert\s+into|delete\s+from)\b", re.I
)
_FORMAT_FIELD = re.compile(r"\{[A-Za-z_][\w.\[\]]*(![rsa])?(:[^{}]*)?\}|\{\}")


@dataclass(frozen=True)
class Literal:
    line: int  # 1-based line of the literal's first character
    text: str  # template holes replaced by placeholder identifiers
    # the same with each hole that stands where no name is expected (a whole clause, an
    # optional filter) left empty instead -- tried when ``text`` does not parse
    clause_text: str = ""
    holes: tuple[str, ...] = ()  # the source of the holes left empty, for messages


# a hole right after one of these is a name (a table, a column, a value); else a clause
_NAME_BEFORE = re.compile(
    r"((\bfrom|\bjoin|\bunnest|\binto|\bupdate|[=<>+\-*/])\s*|[.`(,'\"])$", re.I
)


def _hole_newlines(node: ast.JoinedStr, source: str) -> list[int]:
    """Per hole of ``node``, how many line breaks its source spans (so that lines stay true
    after holes are replaced): the raw text between the literal parts around it. ``ast``
    positions inside f-strings are unreliable before Python 3.12, so the literal parts are
    found in the f-string's own source text."""
    raw = ast.get_source_segment(source, node) or ""
    out: list[int] = []
    cursor, pending = 0, False
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            idx = raw.find(v.value, cursor) if v.value else -1
            if pending and idx >= 0:
                out[-1] = raw[cursor:idx].count("\n")
            if idx >= 0:
                cursor = idx + len(v.value)
            pending = False
        else:
            out.append(0)
            pending = True
    if pending:
        out[-1] = raw[cursor:].count("\n")
    return out


def _joined(node: ast.JoinedStr, source: str) -> tuple[str, str, tuple[str, ...]]:
    names: list[str] = []
    clauses: list[str] = []
    holes: list[str] = []
    breaks = iter(_hole_newlines(node, source))
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            names.append(v.value)
            clauses.append(v.value)
        else:
            hole = f"{PLACEHOLDER}{len(names)}"
            src = ast.unparse(v.value) if isinstance(v, ast.FormattedValue) else "?"
            pad = "\n" * next(breaks, 0)  # a hole spanning lines keeps its line breaks
            names.append(hole + pad)
            if _NAME_BEFORE.search("".join(clauses)):
                clauses.append(hole + pad)
            else:
                clauses.append(pad)
                holes.append(src)
    return "".join(names), "".join(clauses), tuple(dict.fromkeys(holes))


def _format_holes(text: str) -> str:
    count = iter(range(10**6))
    return _FORMAT_FIELD.sub(lambda _m: f"{PLACEHOLDER}f{next(count)}", text)


def sql_literals(source: str) -> list[Literal]:
    """Every string literal of ``source`` that looks like SQL, in source order. A file that
    does not parse as Python has none (the caller reports it)."""
    tree = ast.parse(source)
    out: list[Literal] = []
    seen: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for v in node.values:
                seen.add(id(v))
            text, clause_text, holes = _joined(node, source)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in seen:
                continue
            text, clause_text, holes = _format_holes(node.value), "", ()
        else:
            continue
        if _SQL_HINT.search(text):
            out.append(Literal(node.lineno, text, clause_text, holes))
    out.sort(key=lambda lit: lit.line)
    return out
