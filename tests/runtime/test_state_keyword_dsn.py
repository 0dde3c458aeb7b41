"""A keyword-form PostgreSQL DSN (``host=... password=...``) given as the state store is
refused with an error that does not repeat its password, and never becomes a SQLite file
named after it; ``redact_url`` masks its values. Before, it was taken as a SQLite path (the
password in the file name) and ``--print-config`` printed it as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.errors import ConfigError
from scoperouter.runtime.config import redact_url, resolve
from scoperouter.runtime.state_open import open_shared_state
from scoperouter.state import StoreOptions, open_state_store

PW = "S3cretKw77"
DSNS = [
    f"host=127.0.0.1 port=1 user=u password={PW} dbname=db",
    f"dbname=db password = '{PW} x'",
    f"host=db\tpassword={PW}",
]


def _refuse(how: str, dsn: str) -> str:
    """The text of the refusal of ``dsn`` taken ``how``."""
    with pytest.raises((ConfigError, ValueError)) as exc:
        if how == "environment":
            resolve({}, {"SCOPEROUTER_STATE": dsn}, {})
        elif how == "flag":
            resolve({"state": dsn}, {}, {})
        elif how == "server:":
            resolve({}, {}, {"state": dsn})
        elif how == "open_state_store":
            open_state_store(dsn)
        else:
            open_shared_state(dsn, StoreOptions(owner="a"), "full")
    return str(exc.value)


@pytest.mark.parametrize("dsn", DSNS, ids=["spaces", "quoted", "tab"])
@pytest.mark.parametrize(
    "how", ["environment", "flag", "server:", "open_state_store", "open_shared_state"]
)
def test_a_keyword_dsn_is_refused_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, dsn: str
) -> None:
    """A keyword-form DSN as the state store is an error naming no secret; no file is made of it."""
    monkeypatch.chdir(tmp_path)
    text = _refuse(how, dsn)
    assert "keyword-form connection string" in text
    assert PW not in text
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dsn", DSNS, ids=["spaces", "quoted", "tab"])
def test_redact_url_masks_every_value_of_a_keyword_dsn(dsn: str) -> None:
    """redact_url shows a keyword-form DSN's keys, never its values."""
    shown = redact_url(dsn)
    assert PW not in shown
    assert "password" in shown and "***" in shown


@pytest.mark.parametrize("location", ["state.db", "dir with space/state.db", "a=b.db"])
def test_a_bare_path_is_still_a_sqlite_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    """A bare path (documented) is not taken for a keyword DSN: it opens a SQLite store."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir with space").mkdir()
    assert resolve({"state": location}, {}, {})["state"] == location
    open_state_store(location).close()
    assert (tmp_path / location).exists()
