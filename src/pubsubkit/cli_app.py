"""The ``pubsubkit`` commands that take an application's own code: ``schema``, ``asyncapi`` and ``run``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pubsubkit.errors import ConfigError
from pubsubkit.events import EventRegistry

__all__ = ["add_commands"]


def _schema(args: argparse.Namespace) -> int:
    from pubsubkit.contracts import breaking_changes
    from pubsubkit.schema import event_schemas
    from pubsubkit.targets import import_module, load

    registry = None
    for name in args.modules:
        if ":" in name:
            obj = load(name)
            if not isinstance(obj, EventRegistry):
                raise ConfigError(f"{name} is a {type(obj).__name__}, not a pubsubkit.EventRegistry")
            registry = obj
        else:
            import_module(name)  # registering its event classes
    schemas = event_schemas(registry)
    if args.check:
        path = Path(args.check)
        if not path.exists():
            raise ConfigError(f"no published contract at {path}: write it first with --out {path}")
        breaks = breaking_changes(json.loads(path.read_text()), schemas)
        for line in breaks:
            print(f"breaking: {line}")
        print(f"{len(schemas)} events checked against {path}: {len(breaks)} breaking change(s)")
        return 1 if breaks else 0
    return _write(schemas, args.out, f"the schemas of {len(schemas)} events")


def _write(doc: Any, out: str | None, what: str) -> int:
    """``doc`` as indented JSON to the file ``out`` (saying so on stderr), or to stdout."""
    text = json.dumps(doc, indent=2) + "\n"
    if out:
        Path(out).write_text(text)
        print(f"wrote {what} to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _asyncapi(args: argparse.Namespace) -> int:
    from pubsubkit.targets import load

    obj: Any = load(args.target)
    if callable(obj):
        obj = obj()
    if not isinstance(obj, dict) or "asyncapi" not in obj:
        raise ConfigError(
            f"{args.target} gave {type(obj).__name__}: give pubsubkit asyncapi a function returning the document of"
            " pubsubkit.asyncapi.document(...), or that document"
        )
    return _write(obj, args.out, "the AsyncAPI document")


def _run(args: argparse.Namespace) -> int:
    import logging

    from pubsubkit.targets import load
    from pubsubkit.worker import as_worker, run_worker, supervise

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {args.workers}")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be a TCP port (0 picks a free one), not {args.port}")
    if args.workers > 1:
        return supervise(args.target, args.workers, args.port, args.host)
    obj: Any = load(args.target)
    if callable(obj) and not hasattr(obj, "start"):
        obj = obj()
    return run_worker(as_worker(obj, args.target), port=args.port, host=args.host, name=args.name)


def add_commands(sub: Any) -> None:
    """Add ``schema``, ``asyncapi`` and ``run`` to the ``pubsubkit`` command's subparsers."""
    s = sub.add_parser(
        "schema",
        help="print the JSON Schema of every event type a module registers, or check them against a published one",
    )
    s.add_argument(
        "modules", nargs="+", metavar="MODULE", help="modules to import (or MODULE:REGISTRY for a registry of its own)"
    )
    s.add_argument("--out", metavar="FILE", help="write the schemas to FILE instead of printing them")
    s.add_argument(
        "--check", metavar="FILE", help="exit 1, listing each break, when the classes break the contract in FILE"
    )
    s.set_defaults(fn=_schema)

    s = sub.add_parser("asyncapi", help="print an application's AsyncAPI 3.0 document: MODULE:OBJECT")
    s.add_argument(
        "target", metavar="MODULE:OBJECT", help="a function returning pubsubkit.asyncapi.document(...), or the document"
    )
    s.add_argument("--out", metavar="FILE", help="write it to FILE instead of printing it")
    s.set_defaults(fn=_asyncapi)

    s = sub.add_parser("run", help="run the listeners an application declares as a worker process: MODULE:OBJECT")
    s.add_argument(
        "target", metavar="MODULE:OBJECT", help="a pubsubkit.Worker, a Listener, or a function returning one"
    )
    s.add_argument("--workers", type=int, default=1, help="processes to run (default 1); each on --port + its index")
    s.add_argument("--port", type=int, help="serve GET /live, /ready and /metrics on this port (0: a free one)")
    s.add_argument("--host", default="127.0.0.1", help="the address of that port (default 127.0.0.1)")
    s.add_argument("--name", default="worker", help="the name in its log lines")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    s.set_defaults(fn=_run)
