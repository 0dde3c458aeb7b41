"""The command line around lineage's gaps (review 5): ``lineage --strict`` fails on code it
could not read or resolve; ``validate`` warns about a ``lineage.code`` glob matching no file
(``--strict`` fails on it); an absolute ``--code`` glob is matched, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main

ROUTES = """\
version: 1
date_field: game_date
entities:
  player: {description: player}
sources:
  nba_raw.boxscores: {entity: player, entity_key: player_lookup}
defaults:
  max_entities: 50
  window: {quiet: 10s, max_wait: 1m}
  target: {outbox: {}}
processors:
  p:
    phase: 1
    granularity: player
    inputs:
      - source: nba_raw.boxscores
    publishes: nba_analytics.p
    lineage: {code: [CODE]}
"""


def _setup(tmp_path: Path, code: str, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        f = tmp_path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    (tmp_path / "sql" / "dir.sql").mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(ROUTES.replace("CODE", json.dumps(code)), encoding="utf-8")
    return cfg


GOOD: dict[str, str | bytes] = {"sql/p.sql": "SELECT player_lookup, points FROM nba_raw.boxscores"}


@pytest.mark.parametrize(
    ("code", "files", "plain", "strict"),
    [
        ("sql/p.sql", GOOD, 0, 0),  # clean code passes both
        ("sql/p_TYPO.sql", GOOD, 0, 1),  # a glob matching no file
        ("sql/dir.sql", GOOD, 0, 1),  # a glob matching only a directory
        ("sql/*.py", {"sql/x.py": "def (:\n"}, 0, 1),  # a .py that is not Python
        ("sql/p.sql", {"sql/p.sql": "SELECT a FROM ("}, 0, 1),  # SQL that does not parse
        ("sql/p.sql", {"sql/p.sql": b"SELECT \xff FROM t"}, 0, 1),  # not UTF-8: cannot read
    ],
)
def test_lineage_strict_fails_on_unresolved(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: str,
    files: dict[str, str | bytes],
    plain: int,
    strict: int,
) -> None:
    """``lineage`` passes unreadable code with a notice; ``lineage --strict`` fails on it."""
    cfg = _setup(tmp_path, code, files)
    assert main(["lineage", "--config", str(cfg)]) == plain
    assert main(["lineage", "--strict", "--config", str(cfg)]) == strict
    err = capsys.readouterr().err
    assert ("strict mode fails on" in err) == bool(strict)


@pytest.mark.parametrize(
    ("code", "warned"),
    [
        ("sql/p.sql", False),
        ("sql/*.sql", False),
        ("sql/p_TYPO.sql", True),
        ("sql/*.sqll", True),
        ("sql/dir.sql", True),  # a directory is no code
        ("ABS/sql/p.sql", False),  # an absolute glob
        ("ABS/sql/*.sql", False),
        ("ABS/nowhere/*.sql", True),
    ],
)
def test_validate_checks_code_globs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str, warned: bool
) -> None:
    """``validate`` warns lineage_code_missing for a code glob matching no file (at the
    glob's line); ``--strict`` fails on it, ``--ignore lineage_code_missing`` silences it."""
    cfg = _setup(tmp_path, code.replace("ABS", str(tmp_path)), GOOD)
    assert main(["validate", "--no-relation-data", str(cfg)]) == 0
    assert main(["validate", "--strict", "--no-relation-data", str(cfg)]) == int(warned)
    err = capsys.readouterr().err
    assert ("lineage_code_missing" in err or "matches no file" in err) == warned
    if warned:
        assert f"{cfg}:18:" in err, err
        argv = ["validate", "--strict", "--ignore", "lineage_code_missing", str(cfg)]
        assert main([*argv[:-1], "--no-relation-data", argv[-1]]) == 0


@pytest.mark.parametrize("pattern", ["ABS/sql/*.sql", "ABS/sql/p.sql", "ABS/**/p.sql"])
def test_absolute_code_glob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str
) -> None:
    """An absolute ``--code`` glob with a wildcard is matched (it raised NotImplementedError)."""
    cfg = _setup(tmp_path, "sql/p.sql", GOOD)
    glob = pattern.replace("ABS", str(tmp_path))
    rc = main(["lineage", "--strict", "--json", "--config", str(cfg), "--code", f"p={glob}"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["unresolved"] == 0


IGNORE_ROUTES = ROUTES.replace(
    "lineage: {code: [CODE]}", "lineage: {code: [CODE], ignore_tables: IGNORED, PARTIAL}"
).replace(
    "  nba_raw.boxscores: {entity: player, entity_key: player_lookup}\n",
    "  nba_raw.boxscores: {entity: player, entity_key: player_lookup}\n"
    "  nba_ref.teams: {entity: player}\n  nba_ref.old: {entity: player}\n",
)


def _ignore_setup(tmp_path: Path, sql: str, ignored: list[str], partial: bool) -> Path:
    (tmp_path / "p.sql").write_text(sql, encoding="utf-8")
    cfg = tmp_path / "routes.yaml"
    text = IGNORE_ROUTES.replace("CODE", "p.sql").replace("IGNORED", json.dumps(ignored))
    cfg.write_text(text.replace("PARTIAL", f"partial_code: {str(partial).lower()}"), "utf-8")
    return cfg


def test_validate_rejects_an_ignored_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ignore_tables entry naming an input is an error (it silenced field_not_listed)."""
    cfg = _ignore_setup(tmp_path, "SELECT 1", ["nba_ref.teams", "nba_raw.boxscores"], False)
    assert main(["validate", "--no-relation-data", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "lineage.ignore_tables[1]" in err and "is an input" in err, err


JOIN = (
    "SELECT b.player_lookup, t.name FROM nba_raw.boxscores b "
    "JOIN nba_ref.teams t ON t.id = b.team_id"
)


@pytest.mark.parametrize(
    ("sql", "ignored", "partial", "unused"),
    [
        (JOIN, ["nba_ref.teams"], False, []),  # read: not stale
        (JOIN, ["nba_ref.teams", "nba_ref.old"], False, ["nba_ref.old"]),  # never read
        (JOIN, ["nba_ref.teams", "nba_ref.old"], True, []),  # code outside the globs reads it
        (JOIN + ";\nSELECT FROM (", ["nba_ref.teams", "nba_ref.old"], False, []),  # unparsed
        ("SELECT x FROM nba_ref.teams, ds.fn(1)", ["nba_ref.teams", "nba_ref.old"], False, []),
    ],
)
def test_unused_ignore(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sql: str,
    ignored: list[str],
    partial: bool,
    unused: list[str],
) -> None:
    """An ignore_tables entry no code reads is an unused_ignore warning at its routes.yaml
    line, only when every read was resolved and the globs are all the code."""
    cfg = _ignore_setup(tmp_path, sql, ignored, partial)
    rc = main(["lineage", "--json", "--config", str(cfg)])
    out = json.loads(capsys.readouterr().out)
    assert rc == int(out["errors"] > 0)
    found = [f for f in out["findings"] if f["code"] == "unused_ignore"]
    assert [f["source"] for f in found] == unused, out
    assert all(f["severity"] == "warning" and f["line"] == 20 for f in found), found


BARE_ROUTES = IGNORE_ROUTES.replace(
    "  nba_ref.teams: {entity: player}\n",
    "  nba_ref.teams: {entity: player}\n  nba_raw.injuries: {entity: player}\n",
)


@pytest.mark.parametrize(
    ("sql", "ignored", "ambiguous"),
    [
        # 'injuries' is the ignored nba_static.injuries, or the source nba_raw.injuries
        ("SELECT b.k, i.s FROM nba_raw.boxscores b JOIN injuries i USING (k)", True, True),
        # no ignored table of that name: the registry's unique source, as before
        ("SELECT b.k, i.s FROM nba_raw.boxscores b JOIN injuries i USING (k)", False, False),
        # the qualified ignored table is no bare name
        (
            "SELECT b.k, i.s FROM nba_raw.boxscores b JOIN nba_static.injuries i USING (k)",
            True,
            False,
        ),
    ],
)
def test_bare_name_of_an_ignored_table_and_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sql: str, ignored: bool, ambiguous: bool
) -> None:
    """A bare table name matching an ignored table and another registry source is unresolved
    (it was taken for the ignored table, hiding a read of the source)."""
    (tmp_path / "p.sql").write_text(sql, encoding="utf-8")
    ign = ["nba_static.injuries"] if ignored else []
    text = BARE_ROUTES.replace("CODE", "p.sql").replace("IGNORED", json.dumps(ign))
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(text.replace("PARTIAL", "partial_code: true"), "utf-8")
    main(["lineage", "--json", "--config", str(cfg)])
    out = json.loads(capsys.readouterr().out)
    msgs = [f["message"] for f in out["findings"] if f["code"] == "unresolved"]
    assert any("'injuries' is ambiguous" in m for m in msgs) == ambiguous, out["findings"]


@pytest.mark.parametrize(
    ("source", "expect"),
    [
        # a source named by an API call, never in SQL
        (
            'def f(c):\n    return c.list_rows("nba_raw.injuries")\n',
            "'nba_raw.injuries' names a source",
        ),
        (
            'def f(c):\n    return c.get_table("my-proj.nba_raw.injuries")\n',
            "'nba_raw.injuries' names a source",
        ),
        (  # the project at run time, the table written out
            'def f(c, p):\n    return c.list_rows(f"{p}.nba_raw.injuries")\n',
            "'nba_raw.injuries' names a source",
        ),
        (  # the table at run time
            'def f(c, p, t):\n    return c.list_rows(f"{p}.nba_raw.{t}")\n',
            "table name built at run time: {...}.nba_raw.{...}",
        ),
        # CALL and EXECUTE IMMEDIATE are SQL, unresolved
        ('def f(c):\n    c.query("CALL nba_raw.refresh()")\n', "SQL not analysable (CALL"),
        (
            "def f(c):\n    c.query(\"EXECUTE IMMEDIATE 'SELECT 1'\")\n",
            "SQL not analysable (EXECUTE",
        ),
    ],
)
def test_python_reads_without_sql_are_unresolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, expect: str
) -> None:
    """A table a Python file names outside SQL, CALL and EXECUTE IMMEDIATE are unresolved."""
    (tmp_path / "p.py").write_text(source, encoding="utf-8")
    text = BARE_ROUTES.replace("CODE", "p.py").replace("IGNORED", "[]")
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(text.replace("PARTIAL", "partial_code: false"), "utf-8")
    main(["lineage", "--json", "--config", str(cfg)])
    out = json.loads(capsys.readouterr().out)
    msgs = [f["message"] for f in out["findings"] if f["code"] == "unresolved"]
    assert any(expect in m for m in msgs), out["findings"]


@pytest.mark.parametrize(
    ("entry", "valid"),
    [
        ("nba_ref.events_*", True),
        ("nba_ref.*", True),
        ("nba_ref.teams", True),
        ("nba_ref.ev*ents", False),
        ("*", False),
        ("nba_ref*", False),
        ("nba_raw.box*", False),  # covers the input nba_raw.boxscores
    ],
)
def test_validate_ignore_tables_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, valid: bool
) -> None:
    """An ignore_tables entry may end in * (a wildcard table); one covering an input is an error."""
    cfg = _ignore_setup(tmp_path, "SELECT 1", [entry], True)
    assert main(["validate", "--no-relation-data", str(cfg)]) == int(not valid)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("sql", "missing", "unused"),
    [
        ("SELECT b.k FROM nba_raw.boxscores b JOIN `p.nba_ref.events_*` e ON e.k = b.k", [], []),
        ("SELECT b.k FROM nba_raw.boxscores b JOIN nba_ref.events_2024 e ON e.k = b.k", [], []),
        (
            "SELECT b.k FROM nba_raw.boxscores b JOIN nba_ref.other e ON e.k = b.k",
            ["nba_ref.other"],
            ["nba_ref.events_*"],
        ),
    ],
)
def test_lineage_ignores_a_wildcard_table(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sql: str,
    missing: list[str],
    unused: list[str],
) -> None:
    """``ds.events_*`` in ignore_tables covers the wildcard read and each shard."""
    cfg = _ignore_setup(tmp_path, sql, ["nba_ref.events_*"], False)
    main(["lineage", "--json", "--config", str(cfg)])
    out = json.loads(capsys.readouterr().out)
    got = {
        c: [f["source"] for f in out["findings"] if f["code"] == c]
        for c in ("missing_input", "unused_ignore")
    }
    assert got == {"missing_input": missing, "unused_ignore": unused}, out["findings"]


def test_runtime_undeclared_reads_honour_a_prefix_entry(tmp_path: Path) -> None:
    """A run reporting a shard of an ignored wildcard table reports no undeclared read."""
    from scoperouter.lineage.drift import undeclared_reads
    from scoperouter.processor_registry.loader import load_config

    cfg = _ignore_setup(tmp_path, "SELECT 1", ["nba_ref.events_*"], False)
    reg = load_config(cfg, with_relations=False).registry
    got = undeclared_reads(reg, "nba_analytics.p", ("nba_ref.events_2024", "nba_ref.x"))
    assert got == ("p", ("nba_ref.x",))
