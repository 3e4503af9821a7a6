"""``python -m pubsubkit_dynamodb create-tables URL [COLLECTION[:FIELD,FIELD...]]...``: create the tables."""

from __future__ import annotations

import argparse
import sys

from pubsubkit.errors import PubsubkitError
from pubsubkit_dynamodb import create_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pubsubkit_dynamodb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-tables", help="create the outbox, inbox, meta and collection tables")
    create.add_argument("url", help="the store URL, e.g. dynamodb://?region=us-east-1&prefix=myapp")
    create.add_argument(
        "collections",
        nargs="*",
        metavar="COLLECTION[:FIELD,...]",
        help="a collection and its indexed fields, e.g. events:name",
    )
    args = parser.parse_args(argv)
    collections: dict[str, list[str]] = {}
    for spec in args.collections:
        name, _, fields = spec.partition(":")
        collections[name] = [f for f in fields.split(",") if f]
    try:
        create_tables(args.url, collections)
    except PubsubkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"tables ready for {args.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
