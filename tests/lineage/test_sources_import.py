"""`scoperouter sources import`: a sources: block from an INFORMATION_SCHEMA.COLUMNS export
(JSON lines, JSON array, CSV), in ordinal order, merged over the registry's declarations;
the block pasted into routes.yaml makes validate check every fields name."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from scoperouter.cli import main
from scoperouter.lineage.columns_import import columns_by_table

ROWS = [
    {
        "table_catalog": "p",
        "table_schema": "pos",
        "table_name": "orders",
        "column_name": "amount",
        "ordinal_position": 3,
        "data_type": "NUMERIC",
    },
    {
        "table_catalog": "p",
        "table_schema": "pos",
        "table_name": "orders",
        "column_name": "store_id",
        "ordinal_position": 1,
        "data_type": "STRING",
    },
    {
        "table_catalog": "p",
        "table_schema": "pos",
        "table_name": "orders",
        "column_name": "order_id",
        "ordinal_position": 2,
        "data_type": "STRING",
    },
    {
        "table_catalog": "p",
        "table_schema": "pos",
        "table_name": "audit",
        "column_name": "who",
        "ordinal_position": 1,
        "data_type": "STRING",
    },
]
REGISTRY = """\
version: 1
entities: {store: {}}
sources:
  pos.orders: {entity: store, entity_key: store_id}
processors:
  sales:
    phase: 1
    granularity: store
    inputs:
      - source: pos.orders
        fields: [amount, amout]
    publishes: mart.sales
"""


def _write(tmp: Path, kind: str) -> Path:
    path = tmp / f"columns.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(ROWS), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
            w.writeheader()
            w.writerows(ROWS)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv"])
def test_import_block(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every export form gives the tables the registry names, columns in ordinal order, declarations kept."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "routes.yaml").write_text(REGISTRY, encoding="utf-8")
    assert main(["sources", "import", str(_write(tmp_path, kind))]) == 0
    block = yaml.safe_load(capsys.readouterr().out)
    assert block == {
        "sources": {
            "pos.orders": {
                "entity": "store",
                "entity_key": "store_id",
                "columns": ["store_id", "order_id", "amount"],
            }
        }
    }
    assert main(["sources", "import", "--all", str(_write(tmp_path, kind))]) == 0
    assert set(yaml.safe_load(capsys.readouterr().out)["sources"]) == {"pos.orders", "pos.audit"}


def test_imported_columns_make_validate_check_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pasting the block into the registry turns the typo in fields into a validate error."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "routes.yaml").write_text(REGISTRY, encoding="utf-8")
    assert main(["validate", "routes.yaml"]) == 0
    capsys.readouterr()
    assert main(["sources", "import", str(_write(tmp_path, "jsonl"))]) == 0
    block = capsys.readouterr().out
    head, _sources, tail = REGISTRY.partition(
        "sources:\n  pos.orders: {entity: store, entity_key: store_id}\n"
    )
    (tmp_path / "routes.yaml").write_text(head + block + tail, encoding="utf-8")
    assert main(["validate", "routes.yaml"]) == 1
    assert (
        "fields name 'amout' is not a column of 'pos.orders' (did you mean 'amount'?)"
        in capsys.readouterr().err
    )


def test_rows_without_a_dataset_are_refused() -> None:
    """A row naming no dataset (and no --dataset) is an error, not a guess."""
    with pytest.raises(ValueError, match="table_schema"):
        columns_by_table([{"table_name": "t", "column_name": "c"}])
    assert columns_by_table([{"table_name": "t", "column_name": "c"}], "ds") == {"ds.t": ("c",)}


# INFORMATION_SCHEMA.COLUMN_FIELD_PATHS: one row per field path, the top-level column in
# column_name (a STRUCT / ARRAY<STRUCT> column has a row for itself and one per leaf), no
# ordinal_position; a leaf may share its name with a top-level column (amount)
FIELD_PATHS = [
    ("store_id", "store_id"),
    ("items", "items"),
    ("items", "items.sku"),
    ("items", "items.price"),
    ("items", "items.price.amount"),
    ("items", "items.price.currency"),
    ("shipping", "shipping"),
    ("shipping", "shipping.address"),
    ("shipping", "shipping.address.city"),
    ("amount", "amount"),
]
ORDINAL = {"store_id": 1, "items": 2, "shipping": 3, "amount": 4}


def _field_path_rows(with_ordinal: bool) -> list[dict[str, object]]:
    """COLUMN_FIELD_PATHS rows of pos.orders; ``with_ordinal``: joined with COLUMNS."""
    return [
        {
            "table_schema": "pos",
            "table_name": "orders",
            "column_name": column,
            "field_path": path,
            **({"ordinal_position": ORDINAL[column]} if with_ordinal else {}),
        }
        for column, path in FIELD_PATHS
    ]


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv"])
@pytest.mark.parametrize(
    ("with_ordinal", "expected"),
    [
        # no ordinal_position: in name order
        (False, ["amount", "items", "shipping", "store_id"]),
        (True, ["store_id", "items", "shipping", "amount"]),
    ],
    ids=["field-paths", "field-paths-joined-with-columns"],
)
def test_nested_field_paths_import_as_their_top_level_columns(
    kind: str,
    with_ordinal: bool,
    expected: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nested field_path rows give their top-level column once; no leaf becomes a column, none is lost."""
    monkeypatch.chdir(tmp_path)  # no routes.yaml: every table of the export
    rows = _field_path_rows(with_ordinal)
    path = tmp_path / f"paths.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    assert main(["sources", "import", str(path)]) == 0
    block = yaml.safe_load(capsys.readouterr().out)
    assert block == {"sources": {"pos.orders": {"columns": expected}}}


TWO_SOURCES = """\
version: 1
entities: {store: {}, member: {}}
sources:
  pos.orders: {entity: store, entity_key: store_id}
  crm.members: {entity: member, entity_key: member_id, keys: [member_id]}
processors:
  sales:
    phase: 1
    granularity: store
    inputs:
      - source: pos.orders
        fields: [amount]
      - source: crm.members
    publishes: mart.sales
"""


@pytest.mark.parametrize("flags", [[], ["--all"]], ids=["named", "all"])
def test_declared_sources_the_export_lacks_are_kept(
    flags: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A declared source the export lacks is printed unchanged (and said on stderr): pasting the block deletes nothing."""
    from scoperouter.processor_registry.loader import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "routes.yaml").write_text(TWO_SOURCES, encoding="utf-8")
    before = load_config("routes.yaml", with_relations=False).registry.spec.sources
    assert main(["sources", "import", *flags, str(_write(tmp_path, "jsonl"))]) == 0
    out, err = capsys.readouterr()
    assert "  # declared in routes.yaml but not in the export: kept as declared\n" in out
    assert "crm.members" in err and "not in the export" in err
    assert len(err.strip().splitlines()) == 1, err
    pasted = TWO_SOURCES.replace(
        "sources:\n  pos.orders: {entity: store, entity_key: store_id}\n"
        "  crm.members: {entity: member, entity_key: member_id, keys: [member_id]}\n",
        out,
    )
    (tmp_path / "routes.yaml").write_text(pasted, encoding="utf-8")
    after = load_config("routes.yaml", with_relations=False).registry.spec.sources
    assert after["crm.members"] == before["crm.members"]
    assert after["pos.orders"].entity == "store"
    assert list(after["pos.orders"].columns or ()) == ["store_id", "order_id", "amount"]
