"""``scoperouter schema [--check] [--dir DIR] [--json]``.

Writes ``routes.schema.json``, ``event.schema.json`` and ``trigger.schema.json`` into DIR
(default ``./schemas``) from the pydantic models. With ``--check`` nothing is written: exit
1 and list the files that are missing or stale (regenerate with ``scoperouter schema``).
Either way, exit 1 when a property of a schema has no description (every key is
documented in the schema itself).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scoperouter import schemas
from scoperouter.commands import common, fail


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "schema",
        help="write or verify schemas/*.schema.json",
        description="Generate the JSON Schemas from the models, or check they are current.",
        parents=[common(json=True)],
    )
    p.add_argument("--check", action="store_true", help="verify only; exit 1 when stale")
    p.add_argument("--dir", default="schemas", type=Path, help="directory (default: ./schemas)")
    p.set_defaults(func=run)


def _report_undescribed(undescribed: list[tuple[str, str]], as_json: bool) -> None:
    if as_json:
        return
    for name, ptr in undescribed:
        print(
            f"{name}: {ptr}: property has no description; add Field(description=...) to the "
            "model field",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    undescribed = schemas.missing_descriptions()
    nodesc = [{"file": n, "pointer": p} for n, p in undescribed]
    _report_undescribed(undescribed, args.json)
    if args.check:
        bad = schemas.stale(directory)
        ok = not bad and not undescribed
        if args.json:
            stale = [{"file": n, "why": w} for n, w in bad]
            print(json.dumps({"ok": ok, "stale": stale, "undescribed": nodesc}))
        else:
            for name, why in bad:
                print(f"{directory / name}: {why}; run 'scoperouter schema'", file=sys.stderr)
            if ok:
                print(f"{directory}: {len(schemas.GENERATORS)} schemas up to date")
        return 0 if ok else 1
    try:
        changed = schemas.write(directory)
    except OSError as exc:
        return fail(args, f"cannot write schemas to {directory}: {exc.strerror}")
    if args.json:
        written = [str(p) for p in changed]
        print(json.dumps({"ok": not undescribed, "written": written, "undescribed": nodesc}))
    else:
        for p in changed:
            print(f"wrote {p}")
        if not changed:
            print(f"{directory}: {len(schemas.GENERATORS)} schemas already up to date")
    return 1 if undescribed else 0
