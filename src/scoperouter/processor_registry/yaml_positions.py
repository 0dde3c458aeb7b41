"""Safe, bounded YAML loading that remembers where every node came from.

``load_positioned(text)`` composes the document with PyYAML's pure-Python ``SafeLoader``
(``yaml.compose``: a node graph, aliases shared, no expansion yet), then builds plain Python
data from the nodes itself, recording the position of every value and of every mapping key
under its YAML path (``("processors", "x", "inputs", 0, "map")``). On the way it enforces
what ``yaml.safe_load`` does not:

* duplicate mapping keys are an error at the duplicate's position (``<<`` included: parsers
  disagree on which of two merge keys wins);
* only the standard tags (str, int, float, bool, null, map, seq, merge) are accepted --
  ``!!python/...`` and custom tags are errors, nothing is ever instantiated;
* alias expansion is bounded: the expanded size and depth of every node are computed on the
  shared node graph first (linear time, no expansion), so an alias bomb fails before any
  memory is spent on it, at the position of the node that explodes; recursive aliases are
  errors;
* nesting depth is bounded while composing (no RecursionError on ``[[[[...``);
* the caller bounds the input size (:data:`MAX_BYTES`) and decodes with positions
  (:func:`decode_utf8`).

Timestamps are kept as strings (YAML 1.2 has no timestamp type and the registry has no date
fields); ``<<`` merge keys work as in YAML 1.1, explicit keys winning over merged ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20  # 1 MiB
MAX_NODES = 100_000  # values after alias expansion
MAX_DEPTH = 64  # nesting, after alias expansion

YamlPath = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_MAP = _TAG + "map"
_SEQ = _TAG + "seq"
_STR = _TAG + "str"
_TIMESTAMP = _TAG + "timestamp"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column."""

    line: int
    column: int


@dataclass(frozen=True)
class NodeInfo:
    """Where a value starts, and where its mapping key starts (None for sequence items)."""

    value: Pos
    key: Pos | None
    kind: Literal["scalar", "mapping", "sequence"]

    @property
    def best(self) -> Pos:
        """The scalar itself; for a mapping or sequence the key that introduces it."""
        if self.kind == "scalar" or self.key is None:
            return self.value
        return self.key


class YamlLoadError(Exception):
    """The text is not a loadable YAML document. Carries a position and a YAML path."""

    def __init__(self, message: str, pos: Pos, path: YamlPath = (), code: str = "yaml") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.path = path
        self.code = code


@dataclass(frozen=True)
class PositionedDocument:
    data: object
    nodes: Mapping[YamlPath, NodeInfo]

    def locate(self, path: YamlPath, *, key: bool = False) -> Pos:
        """Position of ``path``, or of its deepest existing ancestor (never fails).

        ``key=True`` prefers the position of the mapping key over the value.
        """
        for n in range(len(path), -1, -1):
            info = self.nodes.get(path[:n])
            if info is not None:
                if key and info.key is not None:
                    return info.key
                # an ancestor of a missing/invalid child: point at the key introducing it
                return info.best if n == len(path) else (info.key or info.value)
        return Pos(1, 1)

    def exists(self, path: YamlPath) -> bool:
        return path in self.nodes


def _tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _pos(mark: yaml.Mark | None) -> Pos:
    if mark is None:
        return Pos(1, 1)
    return Pos(mark.line + 1, mark.column + 1)


def pos_of_offset(text: str, offset: int) -> Pos:
    """Line/column of a character offset in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return Pos(line, offset - start + 1)


def decode_utf8(data: bytes) -> str:
    """UTF-8 (optional BOM) to text; undecodable bytes are an error at their position."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8-sig", errors="replace")
        p = pos_of_offset(good, len(good))
        raise YamlLoadError(
            f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} (is this a binary file?)",
            p,
            code="encoding",
        ) from None


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


def compose(text: str) -> Node | None:
    """The node graph of a single-document YAML text (no construction, no expansion)."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node: Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlLoadError(_syntax_message(exc), _pos(mark), code="yaml_syntax") from None
    except yaml.reader.ReaderError as exc:
        raise YamlLoadError(
            f"invalid character {chr(exc.character)!r} (0x{exc.character:x}) in YAML text",
            pos_of_offset(text, exc.position),
            code="encoding",
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


def _measure(root: Node) -> dict[int, tuple[int, int]]:
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
                    _pos(c.start_mark),
                    _path_to(root, c),
                    code="alias",
                )
            if cid not in sizes:
                stack.append((c, False))
    return sizes


def _too_big(root: Node, sizes: Mapping[int, tuple[int, int]]) -> YamlLoadError | None:
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
    return YamlLoadError(msg, _pos(key_mark or node.start_mark), tuple(path), code="alias")


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[YamlPath, NodeInfo] = {}
        self._scalars = yaml.SafeLoader("")

    def scalar(self, node: ScalarNode, path: YamlPath) -> object:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            raise YamlLoadError(
                f"unsupported YAML tag {_tag(tag)} (only plain data is allowed)",
                _pos(node.start_mark),
                path,
                code="yaml_tag",
            )
        if tag in (_TIMESTAMP, _STR):
            return str(node.value)
        try:
            value: object = self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise YamlLoadError(
                f"invalid scalar {node.value!r}: {exc}", _pos(node.start_mark), path
            ) from None
        except ValueError:  # an integer of more digits than int() converts (4,300)
            raise YamlLoadError(
                f"number too long ({len(node.value)} characters)",
                _pos(node.start_mark),
                path,
                code="yaml_number",
            ) from None
        return value

    def build(self, node: Node, path: YamlPath, key_mark: yaml.Mark | None) -> object:
        if isinstance(node, ScalarNode):
            kind: Literal["scalar", "mapping", "sequence"] = "scalar"
        elif isinstance(node, MappingNode):
            kind = "mapping"
        else:
            kind = "sequence"
        self.nodes.setdefault(
            path,
            NodeInfo(_pos(node.start_mark), _pos(key_mark) if key_mark else None, kind),
        )
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise YamlLoadError(
                    f"unsupported YAML tag {_tag(node.tag)} on a sequence",
                    _pos(node.start_mark),
                    path,
                    code="yaml_tag",
                )
            return [self.build(v, (*path, i), None) for i, v in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        if node.tag != _MAP:
            raise YamlLoadError(
                f"unsupported YAML tag {_tag(node.tag)} on a mapping",
                _pos(node.start_mark),
                path,
                code="yaml_tag",
            )
        return self.mapping(node, path)

    def key(self, node: Node, path: YamlPath) -> str:
        if not isinstance(node, ScalarNode):
            raise YamlLoadError(
                "a mapping key must be a plain string, not a collection",
                _pos(node.start_mark),
                path,
                code="yaml_key",
            )
        value = self.scalar(node, path)
        if not isinstance(value, str):
            raise YamlLoadError(
                f"a mapping key must be a string, got {type(value).__name__} {node.value!r} "
                "(quote it)",
                _pos(node.start_mark),
                path,
                code="yaml_key",
            )
        return value

    def mapping(self, node: MappingNode, path: YamlPath) -> dict[str, object]:
        out: dict[str, object] = {}
        first: dict[str, yaml.Mark] = {}
        merges: list[Node] = []
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.tag == _MERGE:
                if merges:  # YAML parsers disagree on which one wins: a duplicate key
                    fm = first["<<"]
                    raise YamlLoadError(
                        f"duplicate key '<<' (first defined at line {fm.line + 1}, column "
                        f"{fm.column + 1}); merge several mappings with one key: <<: [*a, *b]",
                        _pos(k.start_mark),
                        path,
                        code="duplicate_key",
                    )
                first["<<"] = k.start_mark
                merges.append(v)
                continue
            name = self.key(k, path)
            if name in first:
                fm = first[name]
                raise YamlLoadError(
                    f"duplicate key {name!r} (first defined at line {fm.line + 1}, "
                    f"column {fm.column + 1})",
                    _pos(k.start_mark),
                    (*path, name),
                    code="duplicate_key",
                )
            first[name] = k.start_mark
            out[name] = self.build(v, (*path, name), k.start_mark)
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, MappingNode) or src.tag != _MAP:
                    raise YamlLoadError(
                        "a '<<' merge key needs a mapping or a list of mappings",
                        _pos(src.start_mark),
                        path,
                        code="yaml_merge",
                    )
                for name, value in self.mapping(src, path).items():
                    out.setdefault(name, value)
        return out


def load_positioned(text: str) -> PositionedDocument:
    """Parse one YAML document into plain data plus positions. Raises YamlLoadError.

    An empty document (nothing, or only comments) gives ``data=None``.
    """
    if len(text) > MAX_BYTES:
        raise YamlLoadError(f"file larger than {MAX_BYTES} bytes", Pos(1, 1), code="too_large")
    root = compose(text)
    if root is None:
        return PositionedDocument(None, {})
    sizes = _measure(root)
    err = _too_big(root, sizes)
    if err is not None:
        raise err
    b = _Builder()
    data = b.build(root, (), None)
    return PositionedDocument(data, b.nodes)
