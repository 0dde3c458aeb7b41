"""SQL string literals in Python sources, found with :mod:`ast`.

Invariant: a literal is SQL when it contains the keywords SELECT and FROM (or MERGE / INSERT
/ DELETE / UPDATE ... SET); every template hole -- an f-string expression, a ``str.format``
field, a non-string operand of ``+`` -- becomes a placeholder identifier, so a table named
at run time comes back unresolved rather than guessed; only a name of a module-level string
constant of the same file (bound once in the whole file, so no scope can shadow it, and
none when the file may bind names unseen: a star import, ``globals()``, ...) is put in as
its text. Literals adjacent in the source, a
``+`` chain of them, and a ``q = ...`` with the ``q += ...`` (``q = q + ...``, ``q = f"{q}
..."``) after it in its function are one
literal, each part keeping its source line; a literal that is only a piece of a query
naming a table is a ``fragment`` (unresolved), never dropped. A string statement (a
docstring) is no SQL: it is never run.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace

from scoperouter.lineage.sql import PLACEHOLDER

# Selects candidate literals for the parser; the SQL itself is parsed by sqlglot.
_SQL_HINT = re.compile(
    r"\b(select\b[\s\S]*\bfrom|merge\s+(into\s+)?\S|insert\s+into|delete\s+from"
    r"|update\s+`?[\w{}.-]+`?(\s+(as\s+)?\w+)?\s+set)\b"
    r"|\bcall\s+`?[\w{}.-]+`?\s*\(|\bexecute\s+immediate\b",
    re.I,
)
# a named ({ds}, {cfg.ds}, {t[0]}) or positional ({0}, {0.ds}) field, or an automatic {}
_FORMAT_FIELD = re.compile(r"\{(?:[A-Za-z_]|[0-9])[\w.\[\]]*(![rsa])?(:[^{}]*)?\}|\{\}")


@dataclass(frozen=True)
class Literal:
    line: int  # 1-based line of the literal's first character
    text: str  # template holes replaced by placeholder identifiers
    # the same with each hole that stands where no name is expected (a whole clause, an
    # optional filter) left empty instead -- tried when ``text`` does not parse
    clause_text: str = ""
    holes: tuple[str, ...] = ()  # the source of the holes left empty, for messages
    fragment: bool = False  # a piece of a query assembled at run time (not parsed)
    # for a query grown with ``+=``: the lines of the appends, and the query without them
    # (read instead, listed unresolved, when the whole does not parse)
    appended: tuple[int, ...] = ()
    alone: Literal | None = None


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


@dataclass(frozen=True)
class _Hole:
    src: str  # the hole's source, for messages
    pad: int = 0  # line breaks its source spans


_Seg = str | _Hole


Consts = dict[str, str]


def _bound_names(tree: ast.AST) -> dict[str, int]:
    """How many times each name is bound anywhere in ``tree`` (assignments, parameters,
    imports, definitions, ``global``, ``except ... as``, match captures)."""
    count: dict[str, int] = {}
    for n in ast.walk(tree):
        names: list[str] = []
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            names = [n.id]
        elif isinstance(n, ast.arg):
            names = [n.arg]
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [n.name]
        elif isinstance(n, ast.Import | ast.ImportFrom):
            names = [(a.asname or a.name).split(".")[0] for a in n.names]
        elif isinstance(n, ast.Global | ast.Nonlocal):
            names = list(n.names)
        elif isinstance(n, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and n.name:
            names = [n.name]
        for name in names:
            count[name] = count.get(name, 0) + 1
    return count


def _module_constants(tree: ast.Module) -> Consts:
    """The module-level string constants of ``tree``: a name bound once in the whole file,
    at module level, to a string literal or to an f-string whose every hole is such a
    constant (``TABLE = f"{PROJECT}.ds.t"``)."""
    if _rebinds_dynamically(tree):
        return {}
    bound = _bound_names(tree)
    out: Consts = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if not isinstance(target, ast.Name) or bound.get(target.id) != 1:
            continue
        text = _constant_text(value, out)
        if text is not None:
            out[target.id] = text
    return out


def _rebinds_dynamically(tree: ast.Module) -> bool:
    """Whether ``tree`` may bind module names no assignment shows: a star import, a call of
    ``globals()`` / ``vars()`` / ``exec``, or ``setattr`` on ``sys.modules[...]``."""
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names):
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            if n.func.id in {"globals", "vars", "exec"}:
                return True
            if n.func.id == "setattr" and n.args and "sys.modules" in ast.unparse(n.args[0]):
                return True
    return False


def _constant_text(node: ast.expr, consts: Consts) -> str | None:
    """The text of a string literal, a name of ``consts``, or an f-string made of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    if isinstance(node, ast.FormattedValue):
        plain = node.conversion == -1 and node.format_spec is None
        return _constant_text(node.value, consts) if plain else None
    if isinstance(node, ast.JoinedStr):
        parts = [_constant_text(v, consts) for v in node.values]
        return None if any(p is None for p in parts) else "".join(p or "" for p in parts)
    return None


def _fstring_segments(node: ast.JoinedStr, source: str, consts: Consts) -> list[_Seg]:
    out: list[_Seg] = []
    breaks = iter(_hole_newlines(node, source))
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            out.append(v.value)
            continue
        pad = next(breaks, 0)
        text = _constant_text(v, consts) if isinstance(v, ast.FormattedValue) else None
        if text is not None and not pad:
            out.append(text)  # a module-level string constant of the file
            continue
        src = ast.unparse(v.value) if isinstance(v, ast.FormattedValue) else "?"
        out.append(_Hole(src, pad))
    return out


def _is_add(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)


def _leaves(node: ast.expr) -> list[ast.expr]:
    """The operands of a ``a + b + c`` chain, left to right."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [*_leaves(node.left), *_leaves(node.right)]
    return [node]


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _stringish(node: ast.AST) -> bool:
    """A string literal, an f-string, ``"...".format(...)``, or a ``+`` chain holding one."""
    if _is_text(node):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "format" and _is_text(node.func.value)
    return _is_add(node) and any(_is_text(x) for x in _leaves(node))  # type: ignore[arg-type]


def _receiver(node: ast.expr) -> ast.expr:
    """The literal of ``"...".format(...)``, else ``node``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _stringish(node):
        return node.func.value
    return node


def _segments(node: ast.expr, source: str, line: int, consts: Consts) -> tuple[list[_Seg], int]:
    """The text and holes of a string expression that starts on ``line`` (line breaks added
    so that each operand keeps its line; a name of ``consts`` is its text), and the line it
    ends on."""
    out: list[_Seg] = []
    for leaf in _leaves(node):
        leaf = _receiver(leaf)
        if getattr(leaf, "lineno", line) > line and (_is_text(leaf) or out):
            out.append("\n" * (leaf.lineno - line))
            line = leaf.lineno
        if isinstance(leaf, ast.JoinedStr):
            segs = _fstring_segments(leaf, source, consts)
        elif isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
            segs = [_format_holes(leaf.value)]
        elif isinstance(leaf, ast.Name) and leaf.id in consts:
            segs = [consts[leaf.id]]
        else:
            segs = [_Hole(ast.unparse(leaf))]
        for seg in segs:
            line += seg.count("\n") if isinstance(seg, str) else seg.pad
        out.extend(segs)
    return out, line


def _render(segs: list[_Seg]) -> tuple[str, str, tuple[str, ...]]:
    """(text with every hole a placeholder name, text with clause holes left empty, the
    sources of the holes left empty)."""
    names: list[str] = []
    clauses: list[str] = []
    holes: list[str] = []
    for seg in segs:
        if isinstance(seg, str):
            names.append(seg)
            clauses.append(seg)
            continue
        hole = f"{PLACEHOLDER}{len(names)}"
        pad = "\n" * seg.pad  # a hole spanning lines keeps its line breaks
        names.append(hole + pad)
        if _NAME_BEFORE.search("".join(clauses)):
            clauses.append(hole + pad)
        else:
            clauses.append(pad)
            holes.append(seg.src)
    return "".join(names), "".join(clauses), tuple(dict.fromkeys(holes))


def _format_holes(text: str) -> str:
    count = iter(range(10**6))
    return _FORMAT_FIELD.sub(lambda _m: f"{PLACEHOLDER}f{next(count)}", text)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _walk_own(scope: ast.AST) -> list[ast.AST]:
    """The nodes of ``scope`` outside the functions and classes nested in it."""
    out: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _self_append(n: ast.Assign, name: str) -> ast.expr | None:
    """What ``q = q + "..."`` or ``q = f"{q} ..."`` appends to ``q`` (as ``q += ...`` would),
    else None: the chain's operands after ``q``, the f-string's parts after its ``{q}``."""
    value = n.value
    if _is_add(value):
        leaves = _leaves(value)
        if isinstance(leaves[0], ast.Name) and leaves[0].id == name and len(leaves) > 1:
            rest = leaves[1]
            for leaf in leaves[2:]:
                rest = ast.copy_location(ast.BinOp(rest, ast.Add(), leaf), leaves[1])
            return rest if _stringish(rest) else None
    if isinstance(value, ast.JoinedStr) and len(value.values) > 1:
        head = value.values[0]
        if (
            isinstance(head, ast.FormattedValue)
            and isinstance(head.value, ast.Name)
            and head.value.id == name
            and head.conversion == -1
            and head.format_spec is None
        ):
            return ast.copy_location(ast.JoinedStr(values=value.values[1:]), value)
    return None


def _appends(tree: ast.AST) -> tuple[dict[int, list[ast.AugAssign]], set[int]]:
    """Per assignment ``q = <string>``: the ``q += <string>`` after it in the same function,
    before the next ``q = ...`` (a query grown by conditional filters); ``q = q + "..."`` and
    ``q = f"{q} ..."`` are such appends too. Also the ids of those self-appends' values
    (parts of the query, never literals of their own)."""
    out: dict[int, list[ast.AugAssign]] = {}
    consumed: set[int] = set()
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, _SCOPES))]
    for scope in scopes:
        events: list[tuple[int, int, str, ast.stmt]] = []
        for n in _walk_own(scope):
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                target = n.targets[0]
                if isinstance(target, ast.Name):
                    rest = _self_append(n, target.id)
                    if rest is not None:
                        aug = ast.copy_location(ast.AugAssign(target, ast.Add(), rest), n)
                        aug.end_lineno = n.end_lineno
                        events.append((n.lineno, n.col_offset, target.id, aug))
                        consumed.add(id(n.value))
                    else:
                        events.append((n.lineno, n.col_offset, target.id, n))
            elif (
                isinstance(n, ast.AugAssign)
                and isinstance(n.op, ast.Add)
                and isinstance(n.target, ast.Name)
                and _stringish(n.value)
            ):
                events.append((n.lineno, n.col_offset, n.target.id, n))
        last: dict[str, ast.Assign] = {}
        for _l, _c, name, n in sorted(events, key=lambda e: (e[0], e[1])):
            if isinstance(n, ast.Assign):
                if _stringish(n.value):
                    last[name] = n
                else:
                    last.pop(name, None)
            elif name in last and isinstance(n, ast.AugAssign):
                out.setdefault(id(_receiver(last[name].value)), []).append(n)
    return out, consumed


# a literal that begins like a piece of a query naming a table (``FROM ds.t``, ``JOIN ...``)
# (after leading holes: ``f"{q} JOIN ds.t"``), or a comma join (``", ds.t i"``)
_FRAGMENT = re.compile(
    r"^\s*(?:" + PLACEHOLDER + r"\w*\s*)*"
    r"(,\s*|select\b[\s\S]*|((left|right|full|inner|cross)\s+(outer\s+)?)?join\s+|from\s+)"
    r"`?[\w{}-]+\.[\w{}]",
    re.I,
)


def _literal(line: int, segs: list[_Seg]) -> Literal | None:
    """The SQL literal of ``segs``, a fragment, or None (no SQL)."""
    text, clause_text, holes = _render(segs)
    if _SQL_HINT.search(text):
        return Literal(line, text, clause_text, holes)
    if _FRAGMENT.search(text):
        return Literal(line, text, fragment=True)
    return None


def sql_literals(source: str) -> list[Literal]:
    """Every string expression of ``source`` that looks like SQL, in source order: literals,
    f-strings, ``+`` chains of them (other operands are holes) and a query grown with
    ``+=``; a literal that is only a piece of a query naming a table comes back as a
    ``fragment``. Docstrings and other string statements are skipped. A file that does not parse as Python has none (the caller reports it)."""
    tree = ast.parse(source)
    consts = _module_constants(tree)
    appends, consumed = _appends(tree)
    inner: set[int] = set(consumed)  # parts of a larger string expression
    for node in ast.walk(tree):
        if _is_add(node) and _stringish(node):
            for part in (node.left, node.right):  # type: ignore[attr-defined]
                if _is_add(part):
                    inner.add(id(part))  # a shorter chain inside this one
            for leaf in _leaves(node):  # type: ignore[arg-type]
                inner |= {id(leaf), id(_receiver(leaf))}
        elif isinstance(node, ast.JoinedStr):
            inner.update(id(v) for v in node.values)
    for augs in appends.values():
        inner.update(i for a in augs for i in (id(a.value), id(_receiver(a.value))))
    # a string statement (a docstring) is never run: prose, however SQL-like its words
    inner.update(id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr))
    out: list[Literal] = []
    for node in ast.walk(tree):
        if id(node) in inner or not isinstance(node, ast.expr) or not _stringish(node):
            continue
        if isinstance(node, ast.Call):
            continue  # "...".format(...): its literal is visited on its own
        segs, end = _segments(node, source, node.lineno, consts)
        alone = _literal(node.lineno, segs)
        augs = appends.get(id(node), [])
        for aug in augs:
            if aug.lineno > end:
                segs.append("\n" * (aug.lineno - end))
            more, end = _segments(aug.value, source, max(aug.lineno, end), consts)
            segs.extend([" ", *more])
        lit = _literal(node.lineno, segs)
        if lit is not None and augs:
            lit = replace(lit, appended=tuple(a.lineno for a in augs), alone=alone)
        if lit is not None:
            out.append(lit)
    out.sort(key=lambda lit: lit.line)
    return out
