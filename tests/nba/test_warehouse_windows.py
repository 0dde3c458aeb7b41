"""The embedded warehouse's window reads (``Warehouse.window_sums``) against a brute-force
oracle: per key, its ``last`` rows dated ``since`` to ``upto`` (newest first), the count
of those matching ``where`` and their sums -- summed newest first, so that float sums keep
their last bits (the demo's outputs, and docs/ledger.md's ``--faults`` transcript, depend
on them)."""

from __future__ import annotations

import pickle
from datetime import date, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from scoperouter.examples.nba.warehouse import TableDef, Warehouse

SRC = "t.windows"
DAY0 = date(2025, 11, 1)
_TABLE = TableDef(SRC, "player", ("minutes", "points"))

# (key, day offset, minutes, points): one row per key and day (the table's primary key)
_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 9),
        st.sampled_from([12, 30, 0, None]),
        st.sampled_from([0.1, 0.2, 0.3, 1e16, 1.0, -1e16, 3, None]),
    ),
    max_size=30,
    unique_by=lambda r: (r[0], r[1]),
)


def _oracle(
    rows: list[tuple[str, int, int | None, float | None]],
    upto: int,
    last: int,
    since: int | None,
    ids: list[str] | None,
) -> dict[str, tuple[float, ...]]:
    """Brute force: each key's rows in range, newest first, the last ``last`` (0: all);
    the count with minutes > 0 and the sums of minutes and points over those, newest first."""
    out: dict[str, tuple[float, ...]] = {}
    for key in sorted({r[0] for r in rows}):
        if ids is not None and key not in ids:
            continue
        mine = sorted(
            (r for r in rows if r[0] == key and r[1] <= upto and (since is None or r[1] >= since)),
            key=lambda r: -r[1],
        )
        if not mine:
            continue
        if last > 0:
            mine = mine[:last]
        sel = [r for r in mine if (r[2] or 0) > 0]
        mins: float = 0
        pts: float = 0
        for r in sel:
            mins += r[2] if r[2] is not None else 0
            pts += r[3] if r[3] is not None else 0
        out[key] = (len(sel), mins, pts)
    return out


@settings(max_examples=150, deadline=None)
@given(
    _rows,
    st.integers(0, 9),
    st.integers(1, 5),
    st.none() | st.integers(0, 9),
    st.none() | st.lists(st.sampled_from(["a", "b", "c", "z"]), max_size=3),
)
# (0.3 + 0.2) + 0.1 is 0.6, (0.1 + 0.2) + 0.3 is 0.6000000000000001: newest first is 0.6
@example([("a", 0, 30, 0.1), ("a", 1, 30, 0.2), ("a", 2, 30, 0.3)], 9, 5, None, None)
def test_last_rows_window_matches_the_oracle_bit_for_bit(
    rows: list[tuple[str, int, int | None, float | None]],
    upto: int,
    last: int,
    since: int | None,
    ids: list[str] | None,
) -> None:
    """The last N rows per key up to a date (and from one): counts and sums as the brute-force oracle gives them, float sums summed newest first to the last bit."""
    wh = Warehouse([_TABLE], {})
    wh.insert(
        SRC,
        (
            {"game_date": DAY0 + timedelta(days=d), "player": k, "minutes": m, "points": p}
            for k, d, m, p in rows
        ),
    )
    got = wh.window_sums(
        SRC,
        ids,
        DAY0 + timedelta(days=upto),
        last,
        ("minutes", "points"),
        "COALESCE(minutes, 0) > 0",
        since=None if since is None else DAY0 + timedelta(days=since),
    )
    want = _oracle(rows, upto, last, since, ids)
    if ids is not None and not ids:
        want = {}
    assert got == want
    # bit for bit: repr tells 0.30000000000000004 from 0.3 (== would too; a NaN would not)
    assert {k: tuple(map(repr, v)) for k, v in got.items()} == {
        k: tuple(map(repr, v)) for k, v in want.items()
    }
    wh.close()


def test_a_pickled_warehouse_has_the_same_rows_and_is_its_own() -> None:
    """Pickled and loaded (another process's copy), a warehouse dumps the same rows and
    knows the same rosters; a write to the copy leaves the original as it was."""
    wh = Warehouse([_TABLE], {"t1": ("a", "b")})
    wh.insert(SRC, ({"game_date": DAY0, "player": k, "minutes": 30, "points": 0.1} for k in "ab"))
    copy = pickle.loads(pickle.dumps(wh))
    assert copy.dump([SRC]) == wh.dump([SRC]) and len(wh.dump([SRC])[SRC]) == 2
    assert copy.player_team == wh.player_team == {"a": "t1", "b": "t1"}
    copy.insert(SRC, [{"game_date": DAY0, "player": "c", "minutes": 1, "points": 1.0}])
    assert len(copy.dump([SRC])[SRC]) == 3 and len(wh.dump([SRC])[SRC]) == 2
