"""Loading routes.yaml: positions, safety limits, semantic warnings, the validate command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoperouter.cli import main
from scoperouter.errors import ConfigError
from scoperouter.processor_registry import loader, semantic
from scoperouter.processor_registry.loader import (
    check_config,
    check_config_bytes,
    load_config,
    load_config_text,
)
from scoperouter.processor_registry.yaml_positions import MAX_BYTES, Pos, load_positioned

HERE = Path(__file__).resolve().parent
VALID = sorted((HERE / "valid").glob("*.yaml"))

SMALL = """\
version: 1
entities:
  player: {}
  team: {}
  game: {}
relations:
  team_players: {from: team, to: player}
relation_data:
  csv: {dir: rel}
processors:
  summary:
    phase: 3
    granularity: player
    inputs:
      - source: raw.box
    publishes: analytics.summary
"""


def base_relations(text: str) -> list[str]:
    """Names of the relations a registry stores rows for (not inverses)."""
    data = yaml.safe_load(text)
    return [n for n, r in (data.get("relations") or {}).items() if "inverse_of" not in r]


def with_csvs(tmp_path: Path, text: str, name: str = "routes.yaml") -> Path:
    """Write a registry plus an empty CSV for each base relation under its relation dir."""
    cfg = tmp_path / name
    cfg.write_text(text, encoding="utf-8")
    rel_dir = tmp_path / yaml.safe_load(text)["relation_data"]["csv"]["dir"]
    rel_dir.mkdir(parents=True, exist_ok=True)
    for rel in base_relations(text):
        (rel_dir / f"{rel}.csv").write_text("date,from,to\n", encoding="utf-8")
    return cfg


# ------------------------------------------------------------------------- routes.yaml


def test_repo_routes_validate_with_relation_data(
    routes_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repository's routes.yaml is valid (exit 0) once its relation CSVs exist."""
    cfg = with_csvs(tmp_path, routes_path.read_text(encoding="utf-8"))
    assert main(["validate", str(cfg)]) == 0
    out = capsys.readouterr()
    assert f"{cfg}: valid" in out.out
    assert ": error: " not in out.err


def test_repo_routes_without_csvs_names_each_missing_file(
    routes_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each base relation without <dir>/<rel>.csv is an error at relation_data.csv.dir."""
    text = routes_path.read_text(encoding="utf-8")
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(text, encoding="utf-8")
    (tmp_path / "data" / "relations").mkdir(parents=True)
    assert main(["validate", str(cfg)]) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ": error: " in ln]
    rels = base_relations(text)
    assert len(errors) == len(rels)
    dir_line = next(i for i, ln in enumerate(text.splitlines(), 1) if "csv: {dir:" in ln)
    for rel in rels:
        assert any(f"{rel}.csv" in e and f"{cfg}:{dir_line}:" in e for e in errors), rel


def test_repo_routes_valid_when_relation_data_is_skipped(routes_path: Path) -> None:
    """--no-relation-data validates routes.yaml without its CSV files."""
    assert main(["validate", "--no-relation-data", str(routes_path)]) == 0


def test_json_output_lists_errors_and_warnings(
    routes_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints {"valid", "errors", "warnings"}; each issue carries its position."""
    text = "\n".join(
        line
        for line in routes_path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("game_players:")
    )
    cfg = with_csvs(tmp_path, text)
    assert main(["validate", "--json", str(cfg)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and out["errors"] == []
    assert out["warnings"], "without game_players, game ids cannot reach player processors"
    for w in out["warnings"]:
        assert w["file"] == str(cfg) and w["severity"] == "warning"
        assert isinstance(w["line"], int) and w["line"] >= 1 and w["column"] >= 1
        assert w["path"].startswith("processors.")


def test_json_output_when_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json on an invalid file: valid false, exit 1, the error positioned."""
    cfg = tmp_path / "r.yaml"
    cfg.write_text(SMALL.replace("phase: 3", "phase: three"), encoding="utf-8")
    assert main(["validate", "--json", str(cfg)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False
    [err] = out["errors"]
    assert (err["line"], err["column"], err["path"]) == (12, 12, "processors.summary.phase")


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_corpus(path: Path) -> None:
    """Registries using anchors, merge keys, every target kind and lookback are valid."""
    result = check_config(path, env={})
    assert result.valid, [i.format() for i in result.issues]
    assert result.config is not None


def test_merge_keys_explicit_value_wins() -> None:
    """``<<: *anchor`` merges a mapping; explicit keys override merged ones."""
    reg = load_config(HERE / "valid" / "anchors_and_merge.yaml").registry
    assert (reg.processors["a"].max_entities, reg.processors["b"].max_entities) == (40, 80)
    assert reg.processors["b"].phase == 3


# ------------------------------------------------------------------------- positions


POS_DOC = "a:\n  b: [x, {c: 1}]\n  d:\n    - e\n"


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("a",), False, Pos(1, 1)),  # a mapping: the key introducing it
        (("a", "b"), False, Pos(2, 3)),
        (("a", "b", 0), False, Pos(2, 7)),  # a scalar: the scalar itself
        (("a", "b", 1, "c"), False, Pos(2, 14)),
        (("a", "b", 1, "c"), True, Pos(2, 11)),  # key=True: the key
        (("a", "d", 0), False, Pos(4, 7)),
        (("a", "zz"), False, Pos(1, 1)),  # missing: the nearest existing ancestor
        (("a", "b", 1, "zz"), False, Pos(2, 10)),  # a sequence item: where it starts
    ],
)
def test_locate_positions(path: tuple[str | int, ...], key: bool, expected: Pos) -> None:
    """Every YAML path resolves to the 1-based position of its node (or nearest ancestor)."""
    assert load_positioned(POS_DOC).locate(path, key=key) == expected


@pytest.mark.parametrize(
    ("change", "line", "col", "path", "message"),
    [
        (("from: team", "from: 1team"), 7, 24, "relations.team_players.from", "invalid name"),
        (("  game: {}", "  bad-name: {}"), 5, 3, "entities.bad-name", "invalid name"),
        (("phase: 3", "phase: true"), 12, 12, "processors.summary.phase", "boolean true"),
        (("      - source: raw.box", "      - sorce: raw.box"), 15, 9,
         "processors.summary.inputs[0].sorce", "did you mean 'source'"),
        (("  summary:", "  1summary:"), 11, 3, "processors.1summary", "invalid name"),
    ],
)  # fmt: skip
def test_schema_errors_map_to_positions(
    change: tuple[str, str], line: int, col: int, path: str, message: str
) -> None:
    """Pydantic errors (aliases like 'from', dict keys) map back to the YAML position."""
    result = check_config_bytes(SMALL.replace(*change), file="r.yaml", with_relations=False)
    [err] = result.errors
    assert (err.line, err.column) == (line, col)
    assert err.format().startswith(f"r.yaml:{line}:{col}: error: {path}: ")
    assert message in err.message


# ------------------------------------------------------------------------- safety


def test_python_tags_never_execute(tmp_path: Path) -> None:
    """A !!python tag is an error and its payload never runs."""
    marker = tmp_path / "pwned"
    text = f'version: 1\nx: !!python/object/apply:os.system ["touch {marker}"]\n'
    result = check_config_bytes(text)
    assert not result.valid and result.errors[0].code == "yaml_tag"
    assert not marker.exists()


@pytest.mark.parametrize(("size", "too_large"), [(MAX_BYTES - 1000, False), (MAX_BYTES + 1, True)])
def test_file_size_limit(tmp_path: Path, size: int, too_large: bool) -> None:
    """Files over 1 MiB are rejected before parsing; files under it load."""
    text = SMALL.replace("{dir: rel}", "{dir: .}").replace(
        "relations:\n  team_players: {from: team, to: player}\n", ""
    )
    text = text.replace("relation_data:\n  csv: {dir: .}\n", "")
    line = "# " + "x" * 97 + "\n"
    text += line * ((size - len(text)) // len(line))
    text += "#" * (size - len(text))
    cfg = tmp_path / "big.yaml"
    cfg.write_text(text, encoding="utf-8")
    assert cfg.stat().st_size == size
    result = check_config(cfg)
    assert result.valid is not too_large
    assert any(i.code == "too_large" for i in result.issues) is too_large


@pytest.mark.parametrize(
    "content", [b"", b"   \n", b"[]\n", b"42\n", b"\xff\xd8\xff\xe0JFIF", b"\x00" * 64]
)
def test_validate_never_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    """Empty, scalar, list and binary files exit 1 with a positioned error, no traceback."""
    cfg = tmp_path / "r.yaml"
    cfg.write_bytes(content)
    assert main(["validate", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{cfg}:1:") and ": error: " in err


def test_validate_directory_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory or a missing path is an error (exit 1), not a crash."""
    assert main(["validate", str(tmp_path), str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "is a directory" in err and "cannot read" in err


def test_internal_errors_are_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a check itself crash, validate still exits 1 with a message, no traceback."""

    def boom(*_a: object, **_k: object) -> list[object]:
        raise RuntimeError("bug")

    monkeypatch.setattr(semantic, "check", boom)
    cfg = with_csvs(tmp_path, SMALL)
    assert main(["validate", str(cfg)]) == 1
    assert "internal error" in capsys.readouterr().err


ROUTES_TEXT = (HERE.parent.parent / "routes.yaml").read_text(encoding="utf-8")


@pytest.mark.slow  # 150 whole-registry loads, ~20 s (CI's slow step; the corpus runs by default)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    cuts=st.lists(
        st.tuples(
            st.integers(0, len(ROUTES_TEXT)),
            st.integers(0, 40),
            st.sampled_from(["", "\n", ":", "- ", "{", "[", "*a", "&a ", "  ", "0", "x"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_registries_never_raise(cuts: list[tuple[int, int, str]]) -> None:
    """Random edits of routes.yaml give a result (valid or positioned issues), never raise."""
    text = ROUTES_TEXT
    for at, length, insert in cuts:
        text = text[:at] + insert + text[at + length :]
    result = check_config_bytes(text, with_relations=False)
    n_lines = text.count("\n") + 2
    for issue in result.issues:
        assert issue.line is not None and 1 <= issue.line <= n_lines
        assert issue.column is not None and issue.column >= 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    """Arbitrary bytes never raise out of the checker."""
    result = check_config_bytes(data, with_relations=False)
    assert result.valid or result.errors


# ------------------------------------------------------------------------- semantics


def _codes(text: str, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    result = check_config_bytes(text, with_relations=False, env=env or {})
    out: dict[str, list[str]] = {}
    for i in result.issues:
        out.setdefault(i.code, []).append(f"{i.severity}:{'.'.join(map(str, i.path))}")
    return out


@pytest.mark.parametrize(
    ("change", "code", "expected"),
    [
        # game ids cannot reach players: a warning on the input
        ((), "unmapped_input", "warning:processors.summary.inputs.0.source"),
        # a map on a date-granularity processor can never apply
        (
            (("granularity: player", "granularity: date"),
             ("      - source: raw.box\n", "      - source: raw.box\n        map: {team: [team_players]}\n")),
            "map_ignored", "warning:processors.summary.inputs.0.map.team",
        ),
        # target ${VAR} unset at validate time: warning (serve fails at start-up)
        (
            (("    publishes: analytics.summary\n",
              "    publishes: analytics.summary\n    target: {pubsub: {topic: '${TOPIC}'}}\n"),),
            "env_unset", "warning:processors.summary.target.pubsub.topic",
        ),
        # a later phase feeding an earlier one
        (
            (("    publishes: analytics.summary\n",
              "    publishes: analytics.summary\n  later:\n    phase: 5\n    granularity: date\n"
              "    inputs: [{source: raw.other}]\n    publishes: raw.box\n"),),
            "phase_order", "warning:processors.summary.phase",
        ),
        # two processors publishing one source
        (
            (("    publishes: analytics.summary\n",
              "    publishes: analytics.summary\n  twin:\n    phase: 3\n    granularity: date\n"
              "    inputs: [{source: raw.other}]\n    publishes: analytics.summary\n"),),
            "duplicate_publishes", "warning:processors.twin.publishes",
        ),
        # a misspelled upstream table one edit from a published name: an error
        (
            (("    publishes: analytics.summary\n",
              "    publishes: analytics.summary\n  reader:\n    phase: 4\n    granularity: date\n"
              "    inputs: [{source: analytics.sumary}]\n"),),
            "near_miss_source", "error:processors.reader.inputs.0.source",
        ),
        # two edits from a published name, in its dataset: a warning
        (
            (("    publishes: analytics.summary\n",
              "    publishes: analytics.summary\n  reader:\n    phase: 4\n    granularity: date\n"
              "    inputs: [{source: analytics.sumarry}]\n"),),
            "similar_source", "warning:processors.reader.inputs.0.source",
        ),
        # an http URL without a scheme
        (
            (("    publishes: analytics.summary\n",
              "    publishes: analytics.summary\n    target: {http: {url: 'svc/process'}}\n"),),
            "bad_url", "error:processors.summary.target.http.url",
        ),
    ],
)  # fmt: skip
def test_semantic_findings(change: tuple[tuple[str, str], ...], code: str, expected: str) -> None:
    """Each semantic rule reports its code, severity and YAML path."""
    text = SMALL
    for old, new in change:
        assert old in text
        text = text.replace(old, new)
    assert expected in _codes(text).get(code, []), _codes(text)


@pytest.mark.parametrize(
    ("target", "env", "warned"),
    [
        ("${TOPIC}", {}, True),
        ("${TOPIC}", {"TOPIC": "t"}, False),
        ("${TOPIC:-fallback}", {}, False),
        ("plain-topic", {}, False),
    ],
)
def test_env_warning_depends_on_environment(target: str, env: dict[str, str], warned: bool) -> None:
    """Only a ${VAR} without default that is unset in the environment warns."""
    text = SMALL.replace(
        "    publishes: analytics.summary\n",
        f"    publishes: analytics.summary\n    target: {{pubsub: {{topic: '{target}'}}}}\n",
    )
    assert ("env_unset" in _codes(text, env)) is warned


@pytest.mark.parametrize(
    ("body", "warned"),
    [
        ("{k: '${UNSET_VAR}'}", True),  # a literal expanded when serve starts
        ("{k: '$${UNSET_VAR}'}", False),  # the escape: the text ${UNSET_VAR} itself
        ("{k: {$literal: {$ref: '${UNSET_VAR}'}}}", False),  # verbatim
        ("{k: {$literal: x}, j: '${UNSET_VAR}'}", True),
        # a $lookup table's values are literals: ${VAR} expanded, $$ the escape (it expanded
        # '$${VAR}' at start-up with no warning), and a '$literal' key there is a plain key
        ("{k: {$lookup: [$.scope, {date: '${UNSET_VAR}'}, x]}}", True),
        ("{k: {$lookup: [$.scope, {date: '$${UNSET_VAR}'}, x]}}", False),
        ("{k: {$lookup: [$.scope, {date: ['$${UNSET_VAR}']}, x]}}", False),
        ("{k: {$lookup: [$.scope, {date: {$literal: '${UNSET_VAR}'}}, x]}}", True),
        ("{k: {$lookup: [$.scope, {$literal: '${UNSET_VAR}'}, x]}}", True),
        ("{k: {$lookup: [$.scope, {date: a}, {$literal: '${UNSET_VAR}'}]}}", False),
    ],
)
def test_env_warning_only_where_serve_expands(body: str, warned: bool, tmp_path: Path) -> None:
    """A mapping's $$ escapes and $literal values are sent verbatim, never expanded: no
    env_unset for them (they warned, failing validate --strict on a registry serve runs),
    and serve's start-up fails on an unset variable exactly where validate warns."""
    from scoperouter.processor_registry.models import TargetSpec
    from scoperouter.runtime.sinks import SinkFactory

    text = SMALL.replace(
        "    publishes: analytics.summary\n",
        "    publishes: analytics.summary\n    target:\n      http: {url: 'https://svc.example'}\n"
        f"      mapping:\n        body: {body}\n",
    )
    assert ("env_unset" in _codes(text, {})) is warned
    target = TargetSpec.model_validate(
        {"http": {"url": "https://svc.example"}, "mapping": {"body": yaml.safe_load(body)}}
    )
    try:
        SinkFactory(tmp_path, env={}).build("summary", target)
        failed = False
    except ConfigError as exc:
        failed = "UNSET_VAR is not set" in str(exc)
    assert failed is warned


@pytest.mark.parametrize(
    ("url", "audience", "env", "warned"),
    [
        ("http://svc.example/run", "https://svc.example", {}, True),  # token in clear text
        ("https://other.example/run", "https://svc.example", {}, True),  # another host
        ("https://svc.example:8443/run", "https://svc.example", {}, True),  # another port
        ("https://svc.example/run", "https://svc.example", {}, False),
        ("https://SVC.example/run", "https://svc.example/", {}, False),
        ("https://svc.example:443/run", "https://svc.example", {}, False),
        ("https://svc.example/run", "my-custom-audience", {}, False),  # not a URL: no origin
        ("http://svc.example/run", "my-custom-audience", {}, True),  # still clear text
        ("http://127.0.0.1:8080/run", "http://127.0.0.1:8080", {}, False),  # loopback
        ("http://localhost:8080/run", "my-custom-audience", {}, False),
        ("http://[::1]:8080/run", "http://[::1]:8080", {}, False),
        ("${URL}", "https://svc.example", {"URL": "http://svc.example/run"}, True),
        ("${URL}", "${AUD}", {"URL": "https://a.example/x", "AUD": "https://b.example"}, True),
        ("${URL}", "https://svc.example", {}, False),  # unknown here: env_unset says so
        ("https://svc.example/run", None, {}, False),  # no ID token sent
        ("http://svc.example/run", None, {}, False),
    ],
)
def test_an_id_token_audience_not_tied_to_its_url_warns(
    url: str, audience: str | None, env: dict[str, str], warned: bool
) -> None:
    """An HTTP target with an audience warns (insecure_audience) when its URL is plain http beyond loopback or another origin than a URL audience."""
    http = f"url: '{url}'" + (f", audience: '{audience}'" if audience else "")
    text = SMALL.replace(
        "    publishes: analytics.summary\n",
        f"    publishes: analytics.summary\n    target: {{http: {{{http}}}}}\n",
    )
    codes = _codes(text, env)
    assert ("insecure_audience" in codes) is warned, codes
    if warned:
        assert codes["insecure_audience"] == ["warning:processors.summary.target.http.audience"]


def test_map_removes_unmapped_warning() -> None:
    """Adding a map for the unmapped type silences the warning and validates the path."""
    text = SMALL.replace(
        "relations:\n",
        "relations:\n  game_teams: {from: game, to: team}\n",
    ).replace(
        "      - source: raw.box\n",
        "      - source: raw.box\n        map: {game: [game_teams, team_players]}\n",
    )
    assert _codes(text) == {}


def test_strict_fails_on_warnings(tmp_path: Path) -> None:
    """--strict turns warnings into a failing exit code."""
    cfg = with_csvs(tmp_path, SMALL)
    assert main(["validate", str(cfg)]) == 0
    assert main(["validate", "--strict", str(cfg)]) == 1


# ------------------------------------------------------------------------- public API


def test_load_config_raises_positioned_config_error(tmp_path: Path) -> None:
    """load_config raises ConfigError whose issues carry file, line and column."""
    cfg = tmp_path / "r.yaml"
    cfg.write_text(SMALL.replace("granularity: player", "granularity: plyer"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, with_relations=False)
    [err] = info.value.errors
    assert (err.file, err.line, err.column) == (str(cfg), 13, 18)
    assert str(info.value).startswith(f"{cfg}:13:18: error: processors.summary.granularity: ")


def test_load_config_text_returns_registry_relations_and_warnings(tmp_path: Path) -> None:
    """load_config_text compiles the registry, reads relation rows and keeps warnings."""
    cfg = with_csvs(tmp_path, SMALL)
    (tmp_path / "rel" / "team_players.csv").write_text(
        "date,from,to\n,LAL,lebronjames\n", encoding="utf-8"
    )
    loaded = load_config_text(SMALL, file=str(cfg), base_dir=tmp_path)
    assert loaded.registry.processor_names == ("summary",)
    assert loaded.relations.universe("player", __import__("datetime").date(2025, 1, 1)) == 1
    assert [w.code for w in loaded.warnings] == ["unmapped_input"]


def test_bad_relation_csv_is_positioned_in_the_csv(tmp_path: Path) -> None:
    """A malformed relation CSV is reported at its own file and line."""
    cfg = with_csvs(tmp_path, SMALL)
    csv = tmp_path / "rel" / "team_players.csv"
    csv.write_text("date,from,to\n,LAL,lebronjames\nnot-a-date,BOS,x\n", encoding="utf-8")
    result = check_config(cfg)
    [err] = result.errors
    assert (err.file, err.line) == (str(csv), 3)


def test_check_result_of_unknown_version_is_single_error() -> None:
    """An unsupported version is reported alone (the rest may follow another format)."""
    result = check_config_bytes("version: 3\nwhatever: [1, 2]\n")
    assert [(i.code, i.line, i.column) for i in result.issues] == [("version", 1, 10)]


def test_loader_module_keeps_public_api() -> None:
    """The public names other modules import still exist."""
    for name in ("load_config", "load_config_text", "LoadedConfig", "load_relations"):
        assert hasattr(loader, name)


def test_repo_copy_with_csvs_is_loadable(routes_path: Path, tmp_path: Path) -> None:
    """load_config on a copy of routes.yaml with CSVs compiles every processor."""
    shutil.copy(routes_path, tmp_path / "routes.yaml")
    cfg = with_csvs(tmp_path, routes_path.read_text(encoding="utf-8"))
    loaded = load_config(cfg)
    spec = yaml.safe_load(routes_path.read_text(encoding="utf-8"))
    assert set(loaded.registry.processor_names) == set(spec["processors"])


SOURCES = """\
version: 1
entities: {player: {}, team: {}}
sources:
  raw.injuries: {entity: player, entity_key: player_lookup, columns: [player_lookup, status]}
  raw.standings: {}
processors:
  summary:
    phase: 3
    granularity: player
    inputs:
      - source: raw.injuries
    publishes: analytics.summary
  ranking:
    phase: 4
    granularity: date
    inputs:
      - source: analytics.summary
    publishes: analytics.ranking
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("raw.injuries", "player"),  # declared in sources:
        ("analytics.summary", "player"),  # granularity of its publisher
        ("analytics.ranking", None),  # a date-granularity publisher types nothing
        ("raw.standings", None),  # declared without an entity
        ("raw.unknown", None),
    ],
)
def test_source_entity_types(source: str, expected: str | None) -> None:
    """A source's entity type comes from sources: or from the processor publishing it."""
    reg = load_config_text(SOURCES).registry
    assert reg.entity_type_of_source(source) == expected


def test_declared_source_is_known_to_bare_name_resolution() -> None:
    """A source declared only under sources: is a source the registry names."""
    reg = load_config_text(SOURCES).registry
    assert reg.resolve_source("standings") == "raw.standings"
