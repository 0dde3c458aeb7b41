"""libyaml's parser (the fast path of ``yaml_compose.compose``) and the pure-Python loader
agree on every text: the same node graph (tags, values, positions), or the same error with
the same message, position, YAML path and code -- so a registry is read the same with or
without libyaml, and every error is the pure-Python loader's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scoperouter.processor_registry import yaml_compose
from scoperouter.processor_registry.yaml_compose import MAX_DEPTH, YamlLoadError

REPO = Path(__file__).resolve().parents[2]
TEXTS = sorted(
    [
        REPO / "routes.yaml",
        REPO / "examples" / "retail" / "routes.yaml",
        *(REPO / "tests" / "registry" / "broken").glob("*.yaml"),
    ]
)

pytestmark = pytest.mark.skipif(
    yaml_compose._CLoader is None, reason="PyYAML is built without libyaml: no fast path to compare"
)


def _shape(node: Node | None, seen: dict[int, int] | None = None) -> object:
    """A comparable form of a graph: kind, tag, value and start mark of every node (the
    positions the loader reports; it reads no end mark); a node met again (an alias) by the
    index it was first met at."""
    if node is None:
        return None
    seen = {} if seen is None else seen
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    marks = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, ScalarNode):
        return ("scalar", node.tag, node.value, marks)
    if isinstance(node, SequenceNode):
        return ("seq", node.tag, marks, [_shape(c, seen) for c in node.value])
    assert isinstance(node, MappingNode)
    pairs = [(_shape(k, seen), _shape(v, seen)) for k, v in node.value]
    return ("map", node.tag, marks, pairs)


def _outcome(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as mp:
        if not fast:
            mp.setattr(yaml_compose, "_CLoader", None)
        try:
            return _shape(yaml_compose.compose(text))
        except YamlLoadError as exc:
            return ("error", exc.message, exc.pos, exc.path, exc.code)


@pytest.mark.parametrize("path", TEXTS, ids=[p.name for p in TEXTS])
def test_the_repository_registries_and_the_broken_corpus_compose_alike(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every registry of the repository and every broken registry: one outcome either way."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    assert _outcome(text, True, monkeypatch) == _outcome(text, False, monkeypatch)


@pytest.mark.parametrize(
    "levels", [MAX_DEPTH - 3, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 1200]
)
@pytest.mark.parametrize("flow", [True, False])
def test_nesting_at_the_bound_gets_the_pure_python_verdict(
    levels: int, flow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nesting near, at and past the bound (and past libyaml's own limit): the same graph or error."""
    if flow:
        text = "a: " + "[" * levels + "1" + "]" * levels + "\n"
    else:
        text = "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + "  " * levels + "v\n"
    assert _outcome(text, True, monkeypatch) == _outcome(text, False, monkeypatch)


_scalars = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
# edits that break a text anywhere: a character inserted, removed or replaced
_edit_chars = st.sampled_from(list(":-[]{}&*!|>'\"#%@`,? \t\n\x00\x85\u2028\ufeffa1"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=_values,
    flow=st.sampled_from([None, True, False]),
    edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["ins", "del", "rep"]), _edit_chars), max_size=3),
    anchors=st.booleans(),
)  # fmt: skip
def test_any_text_composes_alike(
    value: object, flow: bool | None, edits: list[tuple[float, str, str]], anchors: bool
) -> None:
    """Dumped documents (anchors and aliases too), then broken by a few edits: the fast path
    gives exactly the pure-Python outcome, graph or error."""
    # one value under two keys: an anchor and an alias when it is a list or a mapping
    text = yaml.safe_dump({"x": value, "y": value} if anchors else value, default_flow_style=flow)
    for at, op, ch in edits:
        i = int(at * len(text))
        text = {"ins": text[:i] + ch + text[i:], "del": text[:i] + text[i + 1 :],
                "rep": text[:i] + ch + text[i + 1 :]}[op]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        assert _outcome(text, True, mp) == _outcome(text, False, mp), text
