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


def _joined(node: ast.JoinedStr) -> str:
    parts: list[str] = []
    n = 0
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append(v.value)
        else:
            parts.append(f"{PLACEHOLDER}{n}")
            n += 1
    return "".join(parts)


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
            text = _joined(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in seen:
                continue
            text = _format_holes(node.value)
        else:
            continue
        if _SQL_HINT.search(text):
            out.append(Literal(node.lineno, text))
    out.sort(key=lambda lit: lit.line)
    return out
