"""The ``pubsubkit`` command: inspect backends, emit and tail events, list and replay dead letters, keep a
SQLite log's size in check (groups, trim), print and check event schemas (schema), and run an application's
listeners as a worker process (run)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pubsubkit.api import default_plugin_manager, open_broker
from pubsubkit.codec import loads
from pubsubkit.envelope import Envelope, new_id, utcnow
from pubsubkit.errors import PubsubkitError
from pubsubkit.plugin import Backends


def _backends(args: argparse.Namespace) -> int:
    b = Backends(default_plugin_manager())
    rows = []
    for scheme, bspec in sorted(b.brokers.items()):
        caps = ", ".join(k for k, v in bspec.capabilities.as_dict().items() if v)
        rows.append(("broker", scheme, bspec.distribution, caps))
    for scheme, sspec in sorted(b.stores.items()):
        caps = ", ".join(k for k, v in sspec.capabilities.as_dict().items() if v)
        rows.append(("store", scheme, sspec.distribution, caps))
    if args.json:
        print(json.dumps([dict(zip(("kind", "scheme", "distribution", "capabilities"), r, strict=True)) for r in rows]))
        return 0
    widths = [max(len(r[i]) for r in [("KIND", "SCHEME", "DISTRIBUTION", "CAPABILITIES"), *rows]) for i in range(4)]
    for r in [("KIND", "SCHEME", "DISTRIBUTION", "CAPABILITIES"), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _emit(args: argparse.Namespace) -> int:
    payload = loads(args.json)
    headers = dict(h.split("=", 1) for h in args.header)
    env = Envelope(
        id=new_id(),
        name=args.name,
        payload=json.dumps(payload).encode(),
        key=args.key,
        occurred_at=utcnow(),
        headers=headers,
    )
    with open_broker(args.url) as broker:
        broker.emitter().publish([env])
    print(env.id)
    return 0


def _tail(args: argparse.Namespace) -> int:
    wanted = set(args.names)
    done = threading.Event()
    count = 0
    with open_broker(args.url) as broker:
        group = args.group or f"pubsubkit-tail-{new_id()}"
        consumer = broker.transport.consumer(group, sorted(wanted) or None)
        signal.signal(signal.SIGINT, lambda *_: done.set())
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.is_set():
                got = consumer.receive(100, 0.2)
                for d in got:
                    env = d.envelope
                    if env is None:
                        print(json.dumps({"poison": True, "error": d.error}), flush=True)
                        continue
                    if wanted and env.name not in wanted:
                        continue
                    try:
                        payload: Any = loads(env.payload)
                    except PubsubkitError:
                        payload = env.payload.decode("utf-8", "replace")
                    print(
                        json.dumps(
                            {
                                "id": env.id,
                                "name": env.name,
                                "key": env.key,
                                "occurred_at": env.occurred_at.isoformat(),
                                "headers": dict(env.headers),
                                "payload": payload,
                            }
                        ),
                        flush=True,
                    )
                    count += 1
                    if args.count and count >= args.count:
                        done.set()
                        break
                consumer.ack(got)
        finally:
            consumer.close()
            forget = getattr(broker.transport, "forget_group", None)
            if args.group is None and forget is not None:
                forget(group)  # a group of its own, made for this tail: it must not hold a log back
    return 0


def _dlq(args: argparse.Namespace) -> int:
    with open_broker(args.url) as broker:
        if args.replay_all:
            args.replay = [dl.id for dl in broker.transport.dead_letters(args.group, args.limit) if dl.id]
            if not args.replay:
                print("no dead letters to replay", file=sys.stderr)
                return 0
        if args.replay:
            for letter_id in args.replay:
                broker.transport.replay_dead_letter(letter_id)
                print(f"replayed {letter_id}")
            print(
                "replayed messages go to every group bound to their names, not only the one that gave up",
                file=sys.stderr,
            )
            return 0
        letters = broker.transport.dead_letters(args.group, args.limit)
        if letters:
            print(
                "replay one with: pubsubkit dlq URL --replay ID (every group bound to its name receives it again;"
                " a group with an inbox skips it if it handled it before)",
                file=sys.stderr,
            )
        for dl in letters:
            print(
                json.dumps(
                    {
                        "id": dl.id,
                        "group": dl.group,
                        "reason": dl.reason,
                        "attempts": dl.attempts,
                        "original_name": dl.original_name,
                        "message_id": dl.envelope.id if dl.envelope else None,
                        "dead_at": dl.dead_at.isoformat() if dl.dead_at else None,
                        "error": dl.error.splitlines()[0] if dl.error else "",
                    }
                )
            )
        if not letters:
            print("no dead letters", file=sys.stderr)
    return 0


def _log_tool(broker: Any, what: str) -> Any:
    tool = getattr(broker.transport, what, None)
    if tool is None:
        raise NotImplementedError(
            f"{broker.url}: only a sqlite:// broker keeps a log that pubsubkit trims (Kafka's is the topic's"
            " retention.ms; RabbitMQ and SQS delete what is acknowledged)"
        )
    return tool


def _groups(args: argparse.Namespace) -> int:
    with open_broker(args.url) as broker:
        if args.forget:
            for group in args.forget:
                found = _log_tool(broker, "forget_group")(group)
                print(f"forgot {group}" if found else f"no group {group}")
            return 0
        for group, unsettled in sorted(_log_tool(broker, "groups")().items()):
            print(json.dumps({"group": group, "unsettled": unsettled}))
    return 0


def _replay(args: argparse.Namespace) -> int:
    since = None if args.since == "earliest" else datetime.fromisoformat(args.since)
    with open_broker(args.url) as broker:
        count = broker.transport.reset_group(args.group, since)
    print(f"group {args.group} receives {count} messages again")
    return 0


def _since(text: str) -> str:
    if text != "earliest":
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: use earliest or a time like 2026-12-01T08:00:00+00:00"
            ) from None
    return text


def _trim(args: argparse.Namespace) -> int:
    with open_broker(args.url) as broker:
        removed = _log_tool(broker, "trim")(args.older_than)
    print(f"trimmed {removed} messages")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``pubsubkit`` command's parser: each subcommand sets ``fn``, which runs it."""
    p = argparse.ArgumentParser(prog="pubsubkit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    _add_message_commands(sub)
    _add_group_commands(sub)

    from pubsubkit.cli_app import add_commands

    add_commands(sub)
    return p


def _add_message_commands(sub: Any) -> None:
    """backends, emit, tail, dlq."""
    s = sub.add_parser("backends", help="list installed backends, their URL schemes and capabilities")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(fn=_backends)

    s = sub.add_parser("emit", help="publish one event: pubsubkit emit URL NAME JSON")
    s.add_argument("url", help="broker URL, e.g. sqlite:///data/bus.db")
    s.add_argument("name", help="event name, e.g. eventCreated")
    s.add_argument("json", help="payload as a JSON object")
    s.add_argument("--key", help="ordering key")
    s.add_argument("--header", action="append", default=[], metavar="K=V", help="a header (repeatable)")
    s.set_defaults(fn=_emit)

    s = sub.add_parser("tail", help="print events as they arrive, one JSON line each")
    s.add_argument("url", help="broker URL")
    s.add_argument("names", nargs="*", help="only these event names")
    s.add_argument("--group", help="consumer group (default: a new one, which sees the log from its start)")
    s.add_argument("--count", type=int, default=0, help="stop after this many events")
    s.set_defaults(fn=_tail)

    s = sub.add_parser("dlq", help="list dead letters (each with its id), or replay them with --replay ID")
    s.add_argument("url", help="broker URL")
    s.add_argument("--group", help="only this consumer group's dead letters")
    s.add_argument("--limit", type=int, default=100)
    what = s.add_mutually_exclusive_group()
    what.add_argument(
        "--replay", nargs="+", metavar="ID", help="publish these dead letters again, to every group bound to their name"
    )
    what.add_argument(
        "--replay-all", action="store_true", help="replay every dead letter listed (of --group, up to --limit)"
    )
    s.set_defaults(fn=_dlq)


def _add_group_commands(sub: Any) -> None:
    """groups, replay, trim."""
    s = sub.add_parser("groups", help="list a sqlite:// log's consumer groups and what each has not settled")
    s.add_argument("url", help="broker URL, e.g. sqlite:///data/bus.db")
    s.add_argument("--forget", nargs="+", metavar="GROUP", help="remove these groups, so they no longer hold the log")
    s.set_defaults(fn=_groups)

    s = sub.add_parser("replay", help="move a consumer group back, so that it receives retained messages again")
    s.add_argument("url", help="broker URL, e.g. sqlite:///data/bus.db")
    s.add_argument("--group", required=True, help="the consumer group to move back")
    s.add_argument(
        "--from",
        dest="since",
        type=_since,
        default="earliest",
        metavar="earliest|TIME",
        help="the first message kept (default), or the first that occurred at or after TIME (ISO 8601)",
    )
    s.set_defaults(fn=_replay)

    s = sub.add_parser("trim", help="delete the messages of a sqlite:// log that every group has settled")
    s.add_argument("url", help="broker URL, e.g. sqlite:///data/bus.db")
    s.add_argument(
        "--older-than", type=float, default=0.0, metavar="SECONDS", help="keep what is younger (default: 0, keep none)"
    )
    s.set_defaults(fn=_trim)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.fn(args)
        return rc
    except PubsubkitError as exc:
        print(f"pubsubkit: error: {exc}", file=sys.stderr)
        return 2
    except NotImplementedError as exc:
        print(f"pubsubkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
