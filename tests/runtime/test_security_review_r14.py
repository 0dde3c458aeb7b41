"""Security review 14: credentials never shown (state DSNs, mapped target headers)."""

from __future__ import annotations

import pytest

from scoperouter.errors import ConfigError
from scoperouter.runtime.config import resolve
from scoperouter.runtime.state_open import open_shared_state
from scoperouter.state import StoreOptions

PW = "s3cretPW41"


# ------------------------------------------------- finding 1: state DSN password shown


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://sr@db:5432/x?password={PW}",  # libpq's query-parameter password
        f"postgresql://sr:{PW}@[::1:5432/x",  # a malformed host: urlsplit raises
    ],
    ids=["query-password", "malformed-ipv6"],
)
def test_print_config_never_shows_a_state_dsn_password(dsn: str) -> None:
    """serve --print-config masks a DSN's password however the DSN spells or misspells it."""
    shown = resolve({}, {"SCOPEROUTER_STATE": dsn}, {}).to_json()["state"]["value"]
    assert PW not in shown


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://sr:{PW}%zz@127.0.0.1:1/x",  # an unencoded '%' in the password
        f"postgresql://sr:{PW}@[::1:5432/x",  # libpq quotes the whole URI in its error
    ],
    ids=["bad-percent", "malformed-ipv6"],
)
def test_unusable_state_store_error_never_shows_the_password(dsn: str) -> None:
    """The one-line error of an unusable state DSN carries neither the password nor a traceback."""
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError) as exc:
        open_shared_state(dsn, StoreOptions(owner="t"), "full")
    assert PW not in str(exc.value)
