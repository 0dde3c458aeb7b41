"""Safe, bounded YAML loading that remembers where every node came from.

``load_positioned(text)`` composes the document with PyYAML's pure-Python ``SafeLoader``
(:mod:`yaml_compose`: a node graph, aliases shared, no expansion yet, bounds checked), then
builds plain Python data from the nodes itself, recording the position of every value and of
every mapping key under its YAML path (``("processors", "x", "inputs", 0, "map")``). On the
way it enforces what ``yaml.safe_load`` does not:

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
  (:func:`decode_utf8`);
* a number YAML 1.1 and YAML 1.2 read differently is an error at its position: a leading
  zero (``010``: octal 8 to PyYAML, 10 to YAML 1.2 and JSON Schema editors), a ``0x`` /
  ``0b`` prefix, a ``_`` or a ``:`` (``1:00``: base 60, i.e. 60) -- write plain decimals.

Timestamps are kept as strings (YAML 1.2 has no timestamp type and the registry has no date
fields); ``<<`` merge keys work as in YAML 1.1, explicit keys winning over merged ones.

Invariant: the data holds only plain values (str, int, float, bool, None, list, dict) and
every value and mapping key in it has its position recorded under its YAML path.
``Pos``, ``YamlLoadError`` and ``YamlPath`` are defined in :mod:`yaml_compose` and
re-exported here, the module callers load with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scoperouter.processor_registry.yaml_compose import (
    Pos,
    YamlLoadError,
    YamlPath,
    compose,
    measure,
    pos_of_mark,
    pos_of_offset,
    too_big,
)

__all__ = [
    "MAX_BYTES",
    "NodeInfo",
    "Pos",
    "PositionedDocument",
    "YamlLoadError",
    "YamlPath",
    "decode_utf8",
    "load_positioned",
]

MAX_BYTES = 1 << 20  # 1 MiB

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_MAP = _TAG + "map"
_SEQ = _TAG + "seq"
_STR = _TAG + "str"
_TIMESTAMP = _TAG + "timestamp"
_INT = _TAG + "int"
_FLOAT = _TAG + "float"
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))


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


def _number_problem(node: ScalarNode, value: object) -> str | None:
    """Why a number scalar must be written otherwise, or None: its YAML 1.1 value (what
    PyYAML built) differs from what YAML 1.2 and JSON Schema editors read -- a leading zero
    (octal), a ``0x`` / ``0b`` prefix, a ``_`` or a ``:`` (base 60)."""
    raw = node.value
    if node.tag not in (_INT, _FLOAT):
        return None
    quote = "; quote it if it is text"
    body = raw.lstrip("+-")
    if node.tag == _INT and body[:2].lower() in ("0x", "0b"):
        if body[1] in "xX":
            return (
                f"write {value}, not {raw} (hexadecimal): integers in routes.yaml are plain "
                f"decimals{quote}"
            )
        return f"write {value}, not {raw} (binary to YAML 1.1, the text {raw!r} to YAML 1.2){quote}"
    shown = repr(value) if isinstance(value, float) else str(value)
    if ":" in raw:
        return (
            f"write {shown}, not {raw} (YAML 1.1 reads it as base 60: {shown}; YAML 1.2 as the "
            f"text {raw!r}){quote}"
        )
    if node.tag == _INT and _LEADING_ZERO.match(raw):
        decimal = int(raw.replace("_", ""), 10)
        return (
            f"write {decimal}, not {raw} (YAML 1.1 reads it as octal {value}, YAML 1.2 as "
            f"{decimal}){quote}"
        )
    if "_" in raw:
        return (
            f"write {shown}, not {raw} (YAML 1.1 drops the '_', YAML 1.2 reads the text "
            f"{raw!r}){quote}"
        )
    return None


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[YamlPath, NodeInfo] = {}
        self._scalars = yaml.SafeLoader("")

    def scalar(self, node: ScalarNode, path: YamlPath) -> object:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            raise YamlLoadError(
                f"unsupported YAML tag {_tag(tag)} (only plain data is allowed)",
                pos_of_mark(node.start_mark),
                path,
                code="yaml_tag",
            )
        if tag in (_TIMESTAMP, _STR):
            return str(node.value)
        try:
            value: object = self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise YamlLoadError(
                f"invalid scalar {node.value!r}: {exc}", pos_of_mark(node.start_mark), path
            ) from None
        except ValueError:  # an integer of more digits than int() converts (4,300)
            raise YamlLoadError(
                f"number too long ({len(node.value)} characters)",
                pos_of_mark(node.start_mark),
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
            NodeInfo(
                pos_of_mark(node.start_mark), pos_of_mark(key_mark) if key_mark else None, kind
            ),
        )
        if isinstance(node, ScalarNode):
            value = self.scalar(node, path)
            problem = _number_problem(node, value)
            if problem is not None:
                raise YamlLoadError(problem, pos_of_mark(node.start_mark), path, code="yaml_number")
            return value
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise YamlLoadError(
                    f"unsupported YAML tag {_tag(node.tag)} on a sequence",
                    pos_of_mark(node.start_mark),
                    path,
                    code="yaml_tag",
                )
            return [self.build(v, (*path, i), None) for i, v in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        if node.tag != _MAP:
            raise YamlLoadError(
                f"unsupported YAML tag {_tag(node.tag)} on a mapping",
                pos_of_mark(node.start_mark),
                path,
                code="yaml_tag",
            )
        return self.mapping(node, path)

    def key(self, node: Node, path: YamlPath) -> str:
        if not isinstance(node, ScalarNode):
            raise YamlLoadError(
                "a mapping key must be a plain string, not a collection",
                pos_of_mark(node.start_mark),
                path,
                code="yaml_key",
            )
        value = self.scalar(node, path)
        if not isinstance(value, str):
            raise YamlLoadError(
                f"a mapping key must be a string, got {type(value).__name__} {node.value!r} "
                "(quote it)",
                pos_of_mark(node.start_mark),
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
                        pos_of_mark(k.start_mark),
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
                    pos_of_mark(k.start_mark),
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
                        pos_of_mark(src.start_mark),
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
    sizes = measure(root)
    err = too_big(root, sizes)
    if err is not None:
        raise err
    b = _Builder()
    data = b.build(root, (), None)
    return PositionedDocument(data, b.nodes)
