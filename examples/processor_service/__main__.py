"""``python -m examples.processor_service --db FILE --topic TOPIC [--seed] [--port 8080]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiohttp import web

from examples.processor_service.service import SOURCE, connect, create_app, seed
from scoperouter.sdk import CompletionPublisher, PublishLimits


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.processor_service")
    parser.add_argument("--db", default=":memory:", help="sqlite file (default: in memory)")
    parser.add_argument(
        "--topic", required=True, help="completion topic (id or projects/P/topics/T)"
    )
    parser.add_argument(
        "--project", default=None, help="GCP project (default: GOOGLE_CLOUD_PROJECT)"
    )
    parser.add_argument("--seed", action="store_true", help="load the four demo rows")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-entities", type=int, default=100)
    args = parser.parse_args(argv)
    db = connect(args.db)
    if args.seed:
        seed(db)
    publisher = CompletionPublisher(
        args.topic,
        source=SOURCE,
        project=args.project,
        limits=PublishLimits(max_entities=args.max_entities),
    )
    web.run_app(create_app(db, publisher), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
