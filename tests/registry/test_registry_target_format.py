"""Target formats and the mapping template language (docs/targets.md): what renders, what
``validate`` rejects with FILE:LINE:COL and YAML path, and -- by Hypothesis -- that a
mapping which validates renders, for any trigger, to a value of its checked type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import check_config_bytes
from scoperouter.processor_registry.target_format import trigger_fields
from scoperouter.processor_registry.template import (
    TemplateError,
    compile_template,
    render,
)
from scoperouter.router.decisions import REASON_ORDER, SKIP_REASONS

FIELDS = trigger_fields(["player_game_summary", "team_offense_game_summary"], ["player", "team"])
TRIGGER = {
    "trigger_id": "t-77", "processor": "player_game_summary", "game_date": "2025-11-19",
    "start_date": "2025-11-19", "end_date": "2025-11-19", "scope": "entities",
    "entity_type": "player", "entity_ids": ["lebronjames", "stephcurry"], "reason": "entity_scope",
    "caused_by": ["e-1"], "correlation_id": None, "priority": "critical", "fired_at": None,
}  # fmt: skip


@pytest.mark.parametrize("date_field", ["game_date", "business_date"])
def test_field_table_matches_the_trigger_on_the_wire(date_field: str) -> None:
    """The template's field table is exactly the trigger as sent (Trigger.wire(), the date
    under the registry's date_field), with run reasons."""
    wire = (
        Trigger.model_validate({**TRIGGER, "entity_ids": ["x"]})
        .model_copy(update={"date_field": date_field})
        .wire()
    )
    fields = trigger_fields(["p"], ["player"], date_field)
    assert set(fields) == set(wire)
    assert fields["reason"].values == frozenset(REASON_ORDER) - SKIP_REASONS


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$.game_date", "2025-11-19"),
        (
            {"d": "$.start_date", "n": 3, "b": True, "z": None},
            {"d": "2025-11-19", "n": 3, "b": True, "z": None},
        ),
        ("$$.literal", "$.literal"),
        ("plain", "plain"),
        ({"$eq": ["$.reason", "backfill"]}, False),
        ({"$ne": ["$.scope", "date"]}, True),
        ({"$in": ["$.priority", ["critical", "normal"]]}, True),
        ({"$not": {"$eq": ["$.scope", "entities"]}}, False),
        ({"$and": [{"$eq": ["$.scope", "entities"]}, {"$eq": ["$.priority", "critical"]}]}, True),
        ({"$or": [{"$eq": ["$.scope", "date"]}, {"$eq": ["$.priority", "normal"]}]}, False),
        ({"ids": {"$if": [{"$eq": ["$.scope", "date"]}, "$.entity_ids"]}}, {}),
        (
            {"ids": {"$if": [{"$eq": ["$.scope", "entities"]}, "$.entity_ids"]}},
            {"ids": ["lebronjames", "stephcurry"]},
        ),
        ([1, {"$if": [{"$eq": ["$.scope", "date"]}, 2]}, 3], [1, 3]),
        ({"$if": [{"$eq": ["$.scope", "date"]}, "a", "b"]}, "b"),
        ({"$coalesce": ["$.correlation_id", "$.trigger_id"]}, "t-77"),
        ({"$concat": ["run-", "$.trigger_id", "-", 7]}, "run-t-77-7"),
        ({"$join": ["$.entity_ids", ","]}, "lebronjames,stephcurry"),
        ({"$join": [["$.trigger_id", 7], "/"]}, "t-77/7"),
        ({"$join": [{"$coalesce": ["$.entity_ids", []]}, ","]}, "lebronjames,stephcurry"),
        ({"$count": "$.entity_ids"}, 2),
        (
            {
                "$lookup": [
                    "$.processor",
                    {"player_game_summary": "P", "team_offense_game_summary": "T"},
                ]
            },
            "P",
        ),
        ({"$lookup": ["$.entity_type", {"team": "T"}, "other"]}, "other"),
        ({"$literal": {"$eq": 1}}, {"$eq": 1}),
        ("$", TRIGGER),
    ],
)
def test_render(template: Any, expected: Any) -> None:
    """Each form of the language renders as docs/targets.md says."""
    assert render(compile_template(template, FIELDS), TRIGGER) == expected


@pytest.mark.parametrize(
    ("template", "path", "message"),
    [
        ({"a": "$.end_dat"}, ("a",), "unknown field 'end_dat' (did you mean 'end_date'?)"),
        ({"a": "$foo"}, ("a",), "a reference is '$.field' or '$'"),
        ({"a": {"$eqq": [1, 2]}}, ("a", "$eqq"), "unknown operator '$eqq' (did you mean '$eq'?)"),
        ({"a": {"$eq": [1, 2], "x": 1}}, ("a",), "exactly one key"),
        ({"$eq": ["$.reason", "backfil"]}, ("$eq",), "reason is never 'backfil'"),
        ({"$eq": ["$.entity_ids", "x"]}, ("$eq",), "can never be equal: array|null vs string"),
        ({"$eq": ["$.scope"]}, ("$eq",), "expects a list of 2 arguments"),
        ({"$in": ["$.priority", ["urgent"]]}, ("$in", 1, 0), "priority is never 'urgent'"),
        ({"$if": ["$.scope", 1]}, ("$if", 0), "a condition must be boolean"),
        ({"$not": "$.trigger_id"}, ("$not",), "a condition must be boolean"),
        ({"$concat": ["$.correlation_id"]}, ("$concat", 0), "wrap a nullable field in $coalesce"),
        ({"$join": ["$.trigger_id", ","]}, ("$join", 0), "$join needs a list"),
        (
            {"$join": ["$.entity_ids", "$.trigger_id"]},
            ("$join", 1),
            "separator is a non-empty literal string",
        ),
        # an object, a list, null or a boolean has no text a service splits back (Hypothesis
        # found {'0': ..., '00': None} rendered as its Python repr, failing at render)
        (
            {"$join": [[{"0": "$.trigger_id", "00": None}], ","]},
            ("$join", 0),
            "$join joins a list of strings or numbers (its items may be object)",
        ),
        (
            {"$join": [["$.trigger_id", "$.correlation_id"], ","]},
            ("$join", 0),
            "its items may be null|string",
        ),
        ({"$join": [[True], ","]}, ("$join", 0), "its items may be boolean"),
        ({"$count": "$.scope"}, ("$count",), "$count needs a list"),
        (
            {"$lookup": ["$.processor", {"player_game_summary": "P"}]},
            ("$lookup", 1),
            "no entry for 'team_offense_game_summary'",
        ),
        ({"$lookup": ["$.entity_ids", {}, 1]}, ("$lookup", 0), "a lookup key is a string"),
        ({"$lookup": "x"}, ("$lookup",), "expects [key, {table}]"),
        (
            {"$lookup": ["$.entity_type", {"player": 1, "team": 2}]},
            ("$lookup", 0),
            "entity_type may be null: add a default",
        ),
        # a branch of null adds no value: the key may be null (it rendered "no entry for
        # None" for every date-scope trigger, dead-lettering them, after validating)
        (
            {"$lookup": [{"$if": [{"$eq": ["$.scope", "entities"]}, "ent", None]}, {"ent": 1}]},
            ("$lookup", 0),
            "the key may be null: add a default",
        ),
        # a nullable key whose values are open: a null never matches a table (it validated,
        # then every trigger without a correlation_id was dead-lettered)
        (
            {"$lookup": ["$.correlation_id", {"c1": "one"}]},
            ("$lookup", 0),
            "correlation_id may be null: add a default",
        ),
        ({"$lookup": ["$.fired_at", {}]}, ("$lookup", 0), "fired_at may be null: add a default"),
        (
            {"$lookup": [{"$coalesce": ["$.correlation_id", "$.fired_at"]}, {"c1": 1}]},
            ("$lookup", 0),
            "the key may be null: add a default",
        ),
        (
            {"$lookup": [{"$if": [{"$eq": ["$.scope", "entities"]}, "ent", "day"]}, {"ent": 1}]},
            ("$lookup", 1),
            "no entry for 'day'",
        ),
    ],
)
def test_compile_errors(template: Any, path: tuple[Any, ...], message: str) -> None:
    """Every mistake is reported with its path inside the template."""
    with pytest.raises(TemplateError) as exc:
        compile_template(template, FIELDS)
    assert [(i.path, message in i.message) for i in exc.value.issues] == [(path, True)], (
        exc.value.issues
    )


DATE_ONLY = trigger_fields(["league_rankings"], [])  # every user is date-granular


@pytest.mark.parametrize(
    ("template", "path", "message"),
    [
        (
            {"$lookup": ["$.entity_type", {"player": "per_player"}]},
            ("$lookup", 0),
            "entity_type may be null: add a default",
        ),
        (
            {"$eq": ["$.entity_type", "player"]},
            ("$eq",),
            "entity_type is never 'player' (its values: none, it is always null)",
        ),
    ],
)
def test_entity_type_of_date_granular_users_is_always_null(
    template: Any, path: tuple[Any, ...], message: str
) -> None:
    """A target whose users are all date-granular sends entity_type null on every trigger:
    a lookup keyed by it needs a default (it validated, then dead-lettered every trigger)."""
    with pytest.raises(TemplateError) as exc:
        compile_template(template, DATE_ONLY)
    assert [(i.path, message in i.message) for i in exc.value.issues] == [(path, True)], (
        exc.value.issues
    )
    node = compile_template({"$lookup": ["$.entity_type", {}, "whole_date"]}, DATE_ONLY)
    assert render(node, {**TRIGGER, "scope": "date", "entity_type": None}) == "whole_date"


def test_a_comparison_with_an_environment_value_is_left_to_serve() -> None:
    """validate does not expand ${VAR}: a comparison with one may hold once serve has
    (it was refused as 'processor is never ${PROC}' even with PROC set to a processor)."""
    compile_template({"$eq": ["$.processor", "${PROC}"]}, FIELDS)
    with pytest.raises(TemplateError, match="processor is never 'nope'"):
        compile_template({"$eq": ["$.processor", "nope"]}, FIELDS)
    expanded = compile_template(
        {"$eq": ["$.processor", "${PROC}"]},
        FIELDS,
        literal_hook=lambda text, _p: text.replace("${PROC}", "player_game_summary"),
    )
    assert render(expanded, TRIGGER) is True


def test_a_fallback_sink_knows_no_entity_types() -> None:
    """Unknown users (a fallback sink, trigger_fields(..., None)): entity_type is an open
    nullable string, never the always-null type of date-granular users."""
    fields = trigger_fields([], None)
    assert fields["entity_type"].values is None
    assert fields["entity_type"].kinds == {"string", "null"}
    compile_template({"$eq": ["$.entity_type", "player"]}, fields)  # may hold: no error


BASE = """\
version: 1
entities: {player: {}}
processors:
  pgs:
    phase: 3
    granularity: player
    inputs: [{source: nba_raw.x}]
    target:
"""


@pytest.mark.parametrize(
    ("target", "line", "col", "ypath", "message"),
    [
        (
            '      http: {url: "http://x"}\n      mapping:\n        body: {d: $.dat}\n',
            11,
            19,
            "processors.pgs.target.mapping.body.d",
            "unknown field 'dat'",
        ),
        (
            '      http: {url: "http://x"}\n      mapping:\n        body:\n          b: {$eq: [$.reason, backfil]}\n',
            12,
            15,
            "processors.pgs.target.mapping.body.b.$eq",
            "reason is never 'backfil'",
        ),
        (
            "      pubsub: {topic: t, project: p}\n      format: envelope\n",
            10,
            15,
            "processors.pgs.target.format",
            "format 'envelope' is for HTTP targets",
        ),
        (
            "      outbox: {}\n      mapping:\n        headers: {X-A: a}\n        body: $\n",
            11,
            9,
            "processors.pgs.target.mapping.headers",
            "headers are for HTTP targets",
        ),
        (
            '      http: {url: "http://x"}\n      mapping:\n        headers: {Content-Type: text/plain}\n        body: $\n',
            11,
            33,
            "processors.pgs.target.mapping.headers.Content-Type",
            "set by scoperouter itself",
        ),
        (
            '      http: {url: "http://x"}\n      mapping:\n        headers: {X-Ids: $.entity_ids}\n        body: $\n',
            11,
            26,
            "processors.pgs.target.mapping.headers.X-Ids",
            "a header value is a string",
        ),
        # a constant never sendable (the HTTP client refuses it): it validated, then every
        # trigger was dead-lettered
        (
            '      http: {url: "http://x"}\n      mapping:\n        headers: {X-Tenant: "nba\\n"}\n        body: $\n',
            11,
            29,
            "processors.pgs.target.mapping.headers.X-Tenant",
            "a header value holds a control character",
        ),
        (  # an ESC (YAML "\\e"): aiohttp refuses every control character but tab
            '      http: {url: "http://x"}\n      mapping:\n        headers: {X-Tenant: "nba\\e"}\n        body: $\n',
            11,
            29,
            "processors.pgs.target.mapping.headers.X-Tenant",
            "a header value holds a control character",
        ),
        (
            '      http: {url: "http://x"}\n      mapping:\n        body: {$if: [{$eq: [$.scope, date]}, 1]}\n',
            11,
            9,
            "processors.pgs.target.mapping.body",
            "the body may be left out",
        ),
        (
            '      http: {url: "http://x"}\n      format: trigger\n      mapping: {body: $}\n',
            8,
            5,
            "processors.pgs.target",
            "'mapping' is set but format is 'trigger'",
        ),
    ],
)
def test_validate_positions_mapping_errors(
    target: str, line: int, col: int, ypath: str, message: str
) -> None:
    """validate names FILE:LINE:COL and the YAML path of a wrong format or mapping."""
    result = check_config_bytes(BASE + target, file="routes.yaml", with_relations=False)
    errors = [i for i in result.issues if i.severity == "error"]
    assert len(errors) == 1, [e.format() for e in errors]
    text = errors[0].format()
    assert text.startswith(f"routes.yaml:{line}:{col}: error: {ypath}: "), text
    assert message in text


def test_validate_cli_reports_a_bad_mapping(tmp_path: Path) -> None:
    """`scoperouter validate` exits 1 and prints the positioned template error."""
    f = tmp_path / "routes.yaml"
    f.write_text(BASE + '      http: {url: "http://x"}\n      mapping:\n        body: {d: $.dat}\n')
    proc = subprocess.run([sys.executable, "-m", "scoperouter.cli", "validate", str(f)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert (
        f"{f}:11:19: error: processors.pgs.target.mapping.body.d: unknown field 'dat'"
        in proc.stdout + proc.stderr
    )


def test_docs_mappings_validate_on_the_reference_registry(tmp_path: Path) -> None:
    """The mappings of docs/targets.md pass validate on routes.yaml's processors."""
    repo = Path(__file__).resolve().parents[2]
    doc = (repo / "docs" / "targets.md").read_text()
    import re

    blocks = dict(re.findall(r"<!-- target-mapping: (\w+) -->\s*```yaml\n(.*?)```", doc, re.S))
    spec = yaml.safe_load((repo / "routes.yaml").read_text())
    users = {"analytics_process_date_range": ["player_game_summary", "upcoming_team_game_context"],
             "precompute_process_date": ["player_daily_cache", "ml_feature_store"],
             "coordinator_start": ["prediction_coordinator"]}  # fmt: skip
    for name, procs in users.items():
        for p in procs:
            spec["processors"][p]["target"] = yaml.safe_load(blocks[name])["target"]
    result = check_config_bytes(yaml.safe_dump(spec), file="r.yaml", base_dir=repo, with_relations=False,
                                env={"ANALYTICS_URL": "http://a", "ANALYTICS_API_KEY": "k", "PRECOMPUTE_URL": "http://p",
                                     "COORDINATOR_URL": "http://c", "COORDINATOR_API_KEY": "k"})  # fmt: skip
    assert result.valid, [i.format() for i in result.errors]
    # and a lookup table that misses a processor is caught on the real registry
    spec["processors"]["league_rankings"]["target"] = yaml.safe_load(
        blocks["precompute_process_date"]
    )["target"]
    bad = check_config_bytes(
        yaml.safe_dump(spec), file="r.yaml", base_dir=repo, with_relations=False
    )
    assert any("no entry for 'league_rankings'" in i.message for i in bad.errors)


# ------------------------------------------------------------------ soundness
_STR = st.text(alphabet="abcxyz-_0123456789", min_size=1, max_size=8)
triggers = st.fixed_dictionaries({
    "trigger_id": _STR, "processor": st.sampled_from(["player_game_summary", "team_offense_game_summary"]),
    "game_date": st.just("2025-11-19"), "start_date": st.just("2025-11-19"), "end_date": st.just("2025-11-19"),
    "scope": st.sampled_from(["entities", "date"]), "entity_type": st.none() | st.sampled_from(["player", "team"]),
    "entity_ids": st.none() | st.lists(_STR, min_size=1, max_size=4),
    "reason": st.sampled_from(sorted(FIELDS["reason"].values or ())), "caused_by": st.lists(_STR, max_size=3),
    "correlation_id": st.none() | _STR, "priority": st.sampled_from(["normal", "critical"]),
    "fired_at": st.none() | st.just("2025-11-19T18:00:00Z"),
})  # fmt: skip

# $lookup without a default, only on fields whose values the checker knows, with a table
# that covers every value or misses one: the checker must prove coverage (and nullability)
_no_default = st.sampled_from(["processor", "scope", "priority", "reason", "entity_type"]).flatmap(
    lambda f: st.builds(
        lambda lit, drop: {
            "$lookup": [f"$.{f}", {v: lit for v in sorted(FIELDS[f].values or ()) if v != drop}]
        },
        st.none() | st.booleans() | st.integers(-5, 5),
        st.none() | st.sampled_from(sorted(FIELDS[f].values or ())),
    )
)
# ... and keyed by an $if or $coalesce of literal strings and null, whose values the checker
# knows too (a branch of null left the key's values open, so no default was asked for)
_key_lits = st.none() | st.sampled_from(["k1", "k2"])
_derived_key = st.one_of(
    st.builds(lambda a, b: {"$if": [{"$eq": ["$.scope", "date"]}, a, b]}, _key_lits, _key_lits),
    st.builds(lambda a: {"$coalesce": a}, st.lists(_key_lits, min_size=1, max_size=3)),
)
_no_default_derived = st.builds(
    lambda key, keep, lit: {"$lookup": [key, {k: lit for k in keep}]},
    _derived_key,
    st.lists(st.sampled_from(["k1", "k2"]), unique=True, max_size=2),
    st.integers(-5, 5),
)
_refs = st.sampled_from([f"$.{f}" for f in FIELDS] + ["$"])
_lits = st.none() | st.booleans() | st.integers(-5, 5) | _STR
_leaf = _refs | _lits


def _exprs(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    two = st.lists(children, min_size=2, max_size=2)
    some = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        st.dictionaries(_STR, children, max_size=3),
        st.lists(children, max_size=3),
        st.builds(lambda a: {"$eq": a}, two), st.builds(lambda a: {"$ne": a}, two),
        st.builds(lambda a: {"$not": a}, children), st.builds(lambda a: {"$and": a}, some),
        st.builds(lambda a: {"$or": a}, some), st.builds(lambda a: {"$if": a}, st.lists(children, min_size=2, max_size=3)),
        st.builds(lambda a: {"$coalesce": a}, some), st.builds(lambda a: {"$concat": a}, some),
        st.builds(lambda a: {"$join": [a, ","]}, children), st.builds(lambda a: {"$count": a}, children),
        st.builds(lambda a, t, d: {"$lookup": [a, t, d]}, children, st.dictionaries(_STR, _lits, max_size=2), children),
        _no_default, _no_default_derived,
    )  # fmt: skip


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(v)]


@settings(max_examples=300, deadline=None)
@given(st.recursive(_leaf, _exprs, max_leaves=8), triggers)
def test_a_template_that_compiles_renders_to_its_checked_type(
    template: Any, trigger: dict[str, Any]
) -> None:
    """Soundness against the checker: whatever random template compiles renders for any
    trigger without error, to a JSON value whose kind the checker allowed."""
    try:
        node = compile_template(template, FIELDS)
    except TemplateError:
        return
    value = render(node, trigger)
    json.dumps(value)
    assert _kind(value) in node.type.kinds or ("absent" in node.type.kinds and value is None)
    if node.type.values is not None and isinstance(value, str):
        assert value in node.type.values


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("secret\n", True),
        ("se\rcret", True),
        ("a\x00b", True),
        ("secret-key-1234\x1b", True),  # ESC: aiohttp refuses it at send time
        ("secret\x7f", True),  # DEL
        ("bell\x07", True),
        ("secret", False),
        ("a\tb", False),  # a tab is allowed in a header value
    ],
)
def test_a_header_constant_from_the_environment_is_checked_when_sinks_are_built(
    tmp_path: Path, value: str, refused: bool
) -> None:
    """A ${VAR} header whose value holds a control character other than tab (a secret with
    its newline, an ESC) stops serve's start-up with a config error naming the header."""
    from scoperouter.errors import ConfigError
    from scoperouter.processor_registry.models import TargetSpec
    from scoperouter.runtime.sinks import SinkFactory

    target = TargetSpec.model_validate(
        {
            "http": {"url": "http://x"},
            "mapping": {"headers": {"X-API-Key": "${API_KEY}"}, "body": "$"},
        }
    )
    factory = SinkFactory(tmp_path, env={"API_KEY": value})
    if not refused:
        factory.build("p", target)
        return
    with pytest.raises(ConfigError) as exc:
        factory.build("p", target)
    assert "headers.X-API-Key: a header value holds a control character" in str(exc.value)


@pytest.mark.parametrize(
    "char",
    [chr(c) for c in range(0x21)] + ["\x7f", "\x80", "\x85", "\u2028", "\u00e9", "\u2192"],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_a_mapped_header_is_refused_exactly_when_the_http_client_refuses_it(char: str) -> None:
    """A rendered header value fails the render exactly when aiohttp's own header check refuses it."""
    from aiohttp.http_writer import _py_serialize_headers, _serialize_headers
    from multidict import CIMultiDict

    from scoperouter.processor_registry.models import TargetSpec
    from scoperouter.processor_registry.target_format import build_shaper
    from scoperouter.processor_registry.template import RenderError

    value = f"a{char}b"
    refusals = set()
    for serialize in (_serialize_headers, _py_serialize_headers):  # C and Python
        try:
            serialize("POST / HTTP/1.1", CIMultiDict({"X-Corr": value}))
            refusals.add(False)
        except ValueError:
            refusals.add(True)
    assert len(refusals) == 1
    target = TargetSpec.model_validate(
        {
            "http": {"url": "http://x"},
            "mapping": {"headers": {"X-Corr": "$.correlation_id"}, "body": "$"},
        }
    )
    shaper = build_shaper(target, FIELDS)
    if refusals == {True}:
        with pytest.raises(RenderError, match="control character"):
            shaper.header_values({**TRIGGER, "correlation_id": value})
    else:
        assert shaper.header_values({**TRIGGER, "correlation_id": value}) == {"X-Corr": value}


HEADER_LITERALS = [
    ("concat", {"$concat": ["Bearer ", "abc\n"]}),
    ("lookup table", {"$lookup": ["$.processor", {"pgs": "k\r\nX-Injected: 1"}]}),
    ("lookup default", {"$lookup": ["$.trigger_id", {}, "k\x1b"]}),
    ("coalesce", {"$coalesce": ["$.correlation_id", "k\n"]}),
    ("if then", {"$if": [{"$eq": ["$.scope", "date"]}, "k\x00"]}),
    ("if else", {"$if": [{"$eq": ["$.scope", "date"]}, "ok", "k\x7f"]}),
    ("join separator", {"$join": ["$.entity_ids", "\n"]}),
    ("join item", {"$join": [["a", "b\n"], ","]}),
    ("nested", {"$concat": ["x", {"$coalesce": ["$.fired_at", {"$literal": "k\n"}]}]}),
]


@pytest.mark.parametrize(("label", "header"), HEADER_LITERALS, ids=[c[0] for c in HEADER_LITERALS])
def test_validate_refuses_a_control_character_in_any_literal_a_header_can_send(
    label: str, header: Any
) -> None:
    """A literal holding a control character anywhere a header value can take it from (not
    only a whole-constant value) is a validate error: the HTTP client refuses it on send."""
    from scoperouter.processor_registry.models import TargetSpec
    from scoperouter.processor_registry.target_format import build_shaper

    target = TargetSpec.model_validate(
        {"http": {"url": "http://x"}, "mapping": {"headers": {"X-Key": header}, "body": "$"}}
    )
    fields = trigger_fields(["pgs"], ["player"])
    with pytest.raises(TemplateError) as exc:
        build_shaper(target, fields, where=("t",))
    assert [(i.path, i.message.split(" (")[0]) for i in exc.value.issues] == [
        (
            ("t", "mapping", "headers", "X-Key"),
            "a header value holds a control character other than tab",
        )
    ]


@pytest.mark.parametrize(
    "header",
    [
        # never part of the value: a comparand, a lookup key, a lookup table's key
        {"$if": [{"$eq": ["$.trigger_id", "a\nb"]}, "yes", "no"]},
        {"$lookup": ["$.trigger_id", {"a\nb": "yes"}, "no"]},
        {"$count": ["a\n"]},
        {"$concat": ["a\tb", "$.trigger_id"]},  # a tab is allowed
    ],
)
def test_a_control_character_a_header_never_sends_is_allowed(header: Any) -> None:
    """Literals that never reach a header's value (comparands, lookup keys) are not checked."""
    from scoperouter.processor_registry.models import TargetSpec
    from scoperouter.processor_registry.target_format import build_shaper

    target = TargetSpec.model_validate(
        {"http": {"url": "http://x"}, "mapping": {"headers": {"X-Key": header}, "body": "$"}}
    )
    build_shaper(target, trigger_fields(["pgs"], ["player"]))


@pytest.mark.parametrize(
    "header",
    [
        {"$concat": ["Bearer ", "${API_KEY}"]},
        {"$lookup": ["$.processor", {"p": "${API_KEY}"}]},
        {"$coalesce": ["$.correlation_id", "${API_KEY}"]},
        {"$if": [{"$eq": ["$.scope", "date"]}, "${API_KEY}"]},
    ],
)
def test_an_environment_literal_inside_a_header_template_is_checked_at_start_up(
    tmp_path: Path, header: Any
) -> None:
    """A ${VAR} holding a newline inside $concat/$lookup/$coalesce/$if stops serve at
    start-up with the constant case's error (it built, then dead-lettered every trigger)."""
    from scoperouter.errors import ConfigError
    from scoperouter.processor_registry.models import TargetSpec
    from scoperouter.runtime.sinks import SinkFactory

    target = TargetSpec.model_validate(
        {"http": {"url": "http://x"}, "mapping": {"headers": {"X-API-Key": header}, "body": "$"}}
    )
    SinkFactory(tmp_path, env={"API_KEY": "secret"}).build("p", target)
    with pytest.raises(ConfigError) as exc:
        SinkFactory(tmp_path, env={"API_KEY": "secret\n"}).build("p", target)
    assert "headers.X-API-Key: a header value holds a control character" in str(exc.value)


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("$$USD", "$USD"),  # the escape: one $ removed, as everywhere in a mapping
        ("$${PRICE}", "${PRICE}"),  # escaped: not expanded
        ("${PRICE}", "9"),
        ("$USD", "$USD"),  # a lone $ in a table value stays a literal
        (["$$a", "${PRICE}"], ["$a", "9"]),
        ({"x": "$$b"}, {"x": "$b"}),
    ],
)
def test_lookup_table_values_follow_the_dollar_escape(value: Any, sent: Any) -> None:
    """A $lookup table value's '$$' is the escape of every mapping string: '$$USD' is sent
    as '$USD' and '$${VAR}' is not expanded (it sent '$$USD' and expanded '$${PRICE}')."""
    node = compile_template(
        {"$lookup": ["$.scope", {"entities": value}, None]},
        FIELDS,
        literal_hook=lambda text, _p: text.replace("${PRICE}", "9"),
    )
    assert render(node, TRIGGER) == sent
