"""Acceptance 3: with ``sources:`` columns declared, ``validate`` rejects a fields or
ignore_fields name that is not a column (file:line:col, did-you-mean), and fields sitting on
the wrong input (the name is a column of another input of the processor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.processor_registry.loader import check_config_bytes

BASE = """\
version: 1
date_field: business_date
entities:
  store: {}
sources:
  pos.orders: {entity: store, entity_key: store_id, columns: [store_id, order_id, amount, status]}
  pos.order_lines: {entity: store, entity_key: store_id, columns: [store_id, order_id, sku, qty, price]}
processors:
  store_sales:
    phase: 1
    granularity: store
    inputs:
      - source: pos.orders
        fields: FIELDS_A
      - source: pos.order_lines
        IGNORE_B
    publishes: mart.store_sales
"""


def _issues(
    fields_a: str, ignore_b: str = "fields: [qty, price]"
) -> list[tuple[int, int, str, str]]:
    text = BASE.replace("FIELDS_A", fields_a).replace("IGNORE_B", ignore_b)
    r = check_config_bytes(text, file="routes.yaml", with_relations=False)
    return [(i.line or 0, i.column or 0, i.code or "", i.message) for i in r.errors]


@pytest.mark.parametrize(
    ("fields_a", "ignore_b", "where", "needle"),
    [
        ("[amount, status]", "fields: [qty, price]", None, None),
        ("[amount, stauts]", "fields: [qty, price]", (14, 26), "(did you mean 'status'?)"),
        (
            "[amount, qty]",
            "fields: [price]",
            (14, 26),
            "it is a column of 'pos.order_lines', another input of 'store_sales': the fields sit on the wrong input?",
        ),
        (
            "[amount]",
            "ignore_fields: [amount]",
            (16, 25),
            "ignore_fields name 'amount' is not a column of 'pos.order_lines'; it is a column of 'pos.orders'",
        ),
        (
            "[total]",
            "fields: [qty]",
            (14, 18),
            "fields name 'total' is not a column of 'pos.orders' (declared: amount, order_id, status, store_id)",
        ),
    ],
)
def test_fields_checked_against_columns(
    fields_a: str, ignore_b: str, where: tuple[int, int] | None, needle: str | None
) -> None:
    """A fields/ignore_fields name must be a declared column of its input's source, pointed at by line and column."""
    issues = _issues(fields_a, ignore_b)
    if where is None:
        assert issues == []
        return
    assert [(ln, col, code) for ln, col, code, _m in issues] == [(*where, "unknown_column")]
    assert needle in issues[0][3]


def test_undeclared_columns_are_not_checked() -> None:
    """Without columns on a source, any fields name is accepted (the check is opt-in)."""
    text = BASE.replace("FIELDS_A", "[anything]").replace("IGNORE_B", "fields: [qty]")
    text = text.replace(", columns: [store_id, order_id, amount, status]", "")
    assert check_config_bytes(text, file="routes.yaml", with_relations=False).errors == ()


def test_cli_reports_file_line_col(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`scoperouter validate` prints FILE:LINE:COL and exits 1; --json carries the same position."""
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(
        BASE.replace("FIELDS_A", "[amount, qty]").replace("IGNORE_B", "fields: [price]"),
        encoding="utf-8",
    )
    assert main(["validate", str(cfg)]) == 1
    assert f"{cfg}:14:26: error:" in capsys.readouterr().err
    assert main(["validate", "--json", str(cfg)]) == 1
    (err,) = json.loads(capsys.readouterr().out)["errors"]
    assert (err["line"], err["column"], err["code"]) == (14, 26, "unknown_column")
