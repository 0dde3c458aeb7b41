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
