"""Composing a YAML text into a node graph, safely and within bounds.

Invariant: nothing is ever constructed here -- ``compose`` returns PyYAML's node graph
(aliases shared, not expanded) with nesting bounded while composing, and :func:`too_big` finds
a document whose alias expansion would exceed :data:`MAX_NODES` values or :data:`MAX_DEPTH`
levels from sizes :func:`measure` computes on the shared graph in linear time (a recursive
alias is an error), so an alias bomb fails before any memory is spent on it. Every failure is
a :class:`YamlLoadError` carrying a position and a YAML path.

Where PyYAML has libyaml, a text is composed by libyaml's parser first (several times faster
than the pure-Python one: a registry loads at every ``serve`` start, ``validate`` and test);
that graph is used only when the parse succeeded, its nesting is within bounds and the text
holds nothing the two parsers read differently (:data:`_UNUSUAL`, :func:`_fast_graph_differs`).
Anything else -- a syntax or reader error, a nesting near the bound, a tab or a tag -- is
composed again by the pure-Python loader, so every error, its message and position, is the
pure-Python one, and a registry reads the same with or without libyaml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_NODES = 100_000  # values after alias expansion
MAX_DEPTH = 64  # nesting, after alias expansion

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column."""

    line: int
    column: int


class YamlLoadError(Exception):
    """The text is not a loadable YAML document. Carries a position and a YAML path."""

    def __init__(self, message: str, pos: Pos, path: YamlPath = (), code: str = "yaml") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.path = path
        self.code = code


def pos_of_mark(mark: yaml.Mark | None) -> Pos:
    """The 1-based position of a PyYAML mark (1:1 when there is none)."""
    if mark is None:
        return Pos(1, 1)
    return Pos(mark.line + 1, mark.column + 1)


def pos_of_offset(text: str, offset: int) -> Pos:
    """Line/column of a character offset in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return Pos(line, offset - start + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader that bounds nesting depth while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "invalid YAML"
    if exc.context:
        where = ""
        if exc.context_mark is not None:
            where = f" (line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        return f"YAML syntax error: {exc.context}{where}: {problem}"
    return f"YAML syntax error: {problem}"


#: libyaml's parser with SafeLoader's resolver (None: PyYAML built without libyaml)
_CLoader: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
_FALLBACK = object()  # the fast parse says nothing: the pure-Python loader decides
# what the two parsers read differently (a block scalar's header with no space after it, an
# explicit key, a tag, tabs, a BOM past the start, the Unicode line breaks, controls,
# surrogates, non-characters): a text holding one goes to the pure-Python loader
# (tests/registry/test_yaml_fast_parse.py found each of them)
_UNUSUAL = re.compile(
    r"(?:^[ ]*|[:\[{,][ ]*|-[ ]+)[|>][^ \r\n0-9+-]"
    "|[?!\ufeff\x85\u2028\u2029\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]",
    re.MULTILINE,
)


def _fast_graph_differs(root: Node, bound: int) -> bool:
    """Whether the pure-Python loader may read this graph otherwise: it nests deeper than
    ``bound`` levels as written (an alias a leaf, as the composer counts it; preorder in
    document order, so a node met again is an alias of the anchor met first), or it holds an
    empty plain scalar (``key:`` with no value, an empty document), whose position the two
    parsers put in different places."""
    seen: set[int] = set()
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > bound:
            return True
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode) and node.value == "" and not node.style:
            return True
        stack.extend((c, depth + 1) for c in reversed(_children(node)))
    return False


def _compose_fast(text: str) -> object:
    """libyaml's node graph of ``text``, or :data:`_FALLBACK` when it failed (the pure-Python
    loader then gives the error) or nests near :data:`MAX_DEPTH` (the pure-Python loader
    bounds nesting while composing: its verdict and message stand)."""
    if _CLoader is None or _UNUSUAL.search(text, 1 if text.startswith("\ufeff") else 0):
        return _FALLBACK
    loader = _CLoader(text)
    try:
        node: Node | None = loader.get_single_node()
    except Exception:  # any failure: the pure-Python loader says what and where
        return _FALLBACK
    finally:
        loader.dispose()
    if node is not None and _fast_graph_differs(node, MAX_DEPTH - 2):
        return _FALLBACK
    return node


def compose(text: str) -> Node | None:
    """The node graph of a single-document YAML text (no construction, no expansion)."""
    fast = _compose_fast(text)
    if fast is not _FALLBACK:
        return fast  # type: ignore[return-value]
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node: Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlLoadError(_syntax_message(exc), pos_of_mark(mark), code="yaml_syntax") from None
    except yaml.reader.ReaderError as exc:
        raise YamlLoadError(
            f"invalid character {chr(exc.character)!r} (0x{exc.character:x}) in YAML text",
            pos_of_offset(text, exc.position),
            code="encoding",
        ) from None
    except (ValueError, OverflowError) as exc:  # a double-quoted escape past U+10FFFF
        where = pos_of_mark(loader.get_mark()) if loader is not None else Pos(1, 1)
        raise YamlLoadError(
            f"YAML syntax error: invalid escape in a quoted scalar ({exc})",
            where,
            code="yaml_syntax",
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is one of the above
        raise YamlLoadError(f"YAML error: {exc}", Pos(1, 1), code="yaml_syntax") from None
    except RecursionError:  # pragma: no cover - bounded by MAX_DEPTH
        raise YamlLoadError("YAML nesting too deep", Pos(1, 1), code="yaml_syntax") from None
    finally:
        if loader is not None:
            loader.dispose()


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        out: list[Node] = []
        for k, v in node.value:
            out.append(k)
            out.append(v)
        return out
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _path_to(root: Node, target: Node) -> YamlPath:
    """The shortest YAML path from ``root`` to ``target`` (for messages)."""
    seen = {id(root)}
    queue: list[tuple[Node, YamlPath]] = [(root, ())]
    for node, path in queue:
        if node is target:
            return path
        items: list[tuple[str | int, Node]] = []
        if isinstance(node, MappingNode):
            items = [
                (k.value if isinstance(k, ScalarNode) else i, v)
                for i, (k, v) in enumerate(node.value)
            ]
        elif isinstance(node, SequenceNode):
            items = list(enumerate(node.value))
        for part, child in items:
            if id(child) not in seen:
                seen.add(id(child))
                queue.append((child, (*path, part)))
    return ()


def measure(root: Node) -> dict[int, tuple[int, int]]:
    """Expanded (size, depth) of every node, computed on the shared graph without expanding.

    Iterative post-order DFS; raises YamlLoadError on a recursive alias.
    """
    sizes: dict[int, tuple[int, int]] = {}
    on_stack: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            on_stack.discard(nid)
            size, depth = 1, 1
            for c in _children(node):
                cs, cd = sizes[id(c)]
                size += cs
                depth = max(depth, cd + 1)
            sizes[nid] = (min(size, 1 << 62), depth)
            continue
        if nid in sizes:
            continue
        if nid in on_stack:  # pragma: no cover - guarded below before pushing
            continue
        on_stack.add(nid)
        stack.append((node, True))
        for c in _children(node):
            cid = id(c)
            if cid in on_stack:
                raise YamlLoadError(
                    "recursive alias: a node contains itself",
                    pos_of_mark(c.start_mark),
                    _path_to(root, c),
                    code="alias",
                )
            if cid not in sizes:
                stack.append((c, False))
    return sizes


def too_big(root: Node, sizes: Mapping[int, tuple[int, int]]) -> YamlLoadError | None:
    size, depth = sizes[id(root)]
    if size <= MAX_NODES and depth <= MAX_DEPTH:
        return None
    # descend while a single child is over the limit: the culprit is the last such node
    path: list[str | int] = []
    node = root
    key_mark: yaml.Mark | None = None
    while True:
        nxt: tuple[Node, str | int, yaml.Mark | None] | None = None
        if isinstance(node, MappingNode):
            for i, (k, v) in enumerate(node.value):
                vs, vd = sizes[id(v)]
                if vs > MAX_NODES or vd > MAX_DEPTH:
                    name: str | int = k.value if isinstance(k, ScalarNode) else i
                    nxt = (v, name, k.start_mark)
                    break
        elif isinstance(node, SequenceNode):
            for i, v in enumerate(node.value):
                vs, vd = sizes[id(v)]
                if vs > MAX_NODES or vd > MAX_DEPTH:
                    nxt = (v, i, None)
                    break
        if nxt is None:
            break
        node, part, km = nxt
        path.append(part)
        key_mark = km if km is not None else node.start_mark
    if size > MAX_NODES:
        msg = (
            f"the document expands to more than {MAX_NODES} values through aliases (an alias bomb?)"
        )
    else:
        msg = f"nesting deeper than {MAX_DEPTH} levels after expanding aliases"
    return YamlLoadError(msg, pos_of_mark(key_mark or node.start_mark), tuple(path), code="alias")
