"""Table names in Python sources outside SQL: a string that is only a table's name, as an
API call takes it (``client.list_rows("nba_raw.t")``, ``read_gbq``), found with :mod:`ast`.

Invariant: a plain string is a mention when it is only ``dataset.table`` or
``project.dataset.table``; an f-string is one when its holes are only in the project part
(``f"{project}.nba_raw.t"``), and a name built at run time when a hole stands in the table
part of a ``project.dataset.table`` whose dataset is written out
(``f"{project}.nba_raw.{name}"``): unknown, never guessed. Shapes that may be anything else
(``f"{name}.json"``, ``f"{a}.{b}"``) are neither. A string statement (a docstring) is never
a mention, nor is a piece of an f-string read alone.
"""

from __future__ import annotations

import ast
import re

# a string that is only a table's name: ``dataset.table`` or ``project.dataset.table``
_TABLE_NAME = re.compile(r"^`?(?:[A-Za-z0-9_-]+\.)?[A-Za-z_]\w*\.[A-Za-z_]\w*`?$")
_HOLE = "\x00"  # an f-string's expression, rendered
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_PROJECT = re.compile(r"^[A-Za-z0-9_-]+$")


def _plain_name(text: str) -> str | None:
    """``dataset.table`` of a string that is only a table's name, else None."""
    if not _TABLE_NAME.match(text):
        return None
    return ".".join(text.strip("`").split(".")[-2:])


def _rendered(node: ast.JoinedStr) -> str | None:
    """The f-string's text, each expression one :data:`_HOLE` (None: a nested format spec)."""
    out = []
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            out.append(v.value)
        elif isinstance(v, ast.FormattedValue) and v.format_spec is None:
            out.append(_HOLE)
        else:
            return None
    return "".join(out)


def _fstring_name(node: ast.JoinedStr) -> tuple[str, bool] | None:
    """(``dataset.table``, True) for ``f"{project}.dataset.table"``; (the name shown with its
    holes as ``{...}``, False) for a table part built at run time; None otherwise."""
    text = _rendered(node)
    if text is None:
        return None
    if _HOLE not in text:  # an f-string with no expression: a plain string
        name = _plain_name(text)
        return None if name is None else (name, True)
    parts = text.strip("`").split(".")
    if len(parts) != 3 or not _IDENT.match(parts[1]):
        return None
    project, dataset, table = parts
    if not (_PROJECT.match(project.replace(_HOLE, "x")) and table):
        return None
    if _IDENT.match(table):
        return f"{dataset}.{table}", True
    if _IDENT.match(table.replace(_HOLE, "x")):
        return ".".join(parts).replace(_HOLE, "{...}"), False
    return None


def table_mentions(source: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The table names of ``source`` outside SQL: the mentions, as (line,
    ``dataset.table``) -- a table an API call may read with no SQL lineage can parse --
    and the names built at run time, as (line, the name with ``{...}`` holes)."""
    tree = ast.parse(source)
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    pieces = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    out: set[tuple[int, str]] = set()
    built: set[tuple[int, str]] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.JoinedStr) and id(n) not in docs:
            got = _fstring_name(n)
            if got is not None:
                (out if got[1] else built).add((n.lineno, got[0]))
        elif (
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and id(n) not in docs
            and id(n) not in pieces
            and (name := _plain_name(n.value)) is not None
        ):
            out.add((n.lineno, name))
    return sorted(out), sorted(built)
