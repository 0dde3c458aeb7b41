"""``scoperouter sources import (EXPORT | --bigquery [PROJECT.]DATASET) [--config FILE] [--all]``.

Prints a ``sources:`` block with every table's ``columns`` from BigQuery's
``INFORMATION_SCHEMA.COLUMNS`` -- an export file (JSON array, JSON lines or CSV) or, with
``--bigquery``, the dataset itself -- merged over what the registry already declares
(entity, entity_key, keys). With a registry, only the tables it names are printed unless
``--all``; a source it declares that the export lacks is printed as declared, under a
comment, and named on stderr. Paste it into routes.yaml; ``validate`` then checks every
fields name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoperouter.commands import common
from scoperouter.lineage.columns_import import (
    ColumnsFetchError,
    columns_by_table,
    fetch_columns,
    load_columns_export,
    not_in_export,
    sources_block,
)
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.models import RoutesSpec


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "sources",
        help="fill sources: columns from INFORMATION_SCHEMA.COLUMNS",
        description="Source declarations from BigQuery's INFORMATION_SCHEMA.COLUMNS.",
    )
    s = p.add_subparsers(dest="sources_command", metavar="SUBCOMMAND")
    s.required = True
    imp = s.add_parser(
        "import",
        help="print a sources: block from a COLUMNS export or a live dataset",
        parents=[common(config=True)],
    )
    imp.add_argument(
        "export",
        nargs="?",
        type=Path,
        help="INFORMATION_SCHEMA.COLUMNS export (.json, .jsonl, .csv)",
    )
    imp.add_argument("--bigquery", metavar="DATASET", help="read [PROJECT.]DATASET's COLUMNS live")
    imp.add_argument("--dataset", help="dataset of rows without table_schema")
    imp.add_argument(
        "--all", action="store_true", help="every table, not only those the registry names"
    )
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    if bool(args.export) == bool(args.bigquery):
        print("error: give an export file or --bigquery DATASET (one of them)", file=sys.stderr)
        return 2
    try:
        rows = load_columns_export(args.export) if args.export else fetch_columns(args.bigquery)
    except ImportError:
        print(
            "error: --bigquery needs google-cloud-bigquery (scoperouter[bigquery])", file=sys.stderr
        )
        return 2
    except ColumnsFetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the COLUMNS export: {exc}", file=sys.stderr)
        return 1
    dataset = args.dataset or (args.bigquery.rpartition(".")[2] if args.bigquery else None)
    try:
        columns = columns_by_table(rows, dataset)
    except ValueError as exc:
        where = f"{args.export}: " if args.export else ""
        print(f"error: {where}{exc}", file=sys.stderr)
        return 1
    spec: RoutesSpec | None = None
    if args.config or Path("routes.yaml").is_file():
        spec = load_config(args.config or "routes.yaml", with_relations=False).registry.spec
    sys.stdout.write(sources_block(columns, spec, only_named=not args.all))
    kept = not_in_export(columns, spec)
    if kept:
        print(
            f"note: {len(kept)} declared source{'s' * (len(kept) != 1)} not in the export, "
            f"printed as declared: {', '.join(kept)}",
            file=sys.stderr,
        )
    return 0
