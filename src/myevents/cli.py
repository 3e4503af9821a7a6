"""The ``myevents`` command: ``serve`` (both services), ``event-service``, ``booking-service``, ``rebuild``,
``token``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

import pubsubkit
from myevents import config, logs, tokens
from myevents.config import DEFAULT_BINDS, Config, Service
from pubsubkit.errors import PubsubkitError

__all__ = ["main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="a config.json with the original's keys (or MYEVENTS_CONFIG)")
    p.add_argument("--data-dir", metavar="DIR", help="where embedded SQLite keeps its files (default ./data)")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes per service (default 1)")
    p.add_argument("--certfile", metavar="FILE", help="TLS certificate (PEM); with --keyfile, serve HTTPS")
    p.add_argument("--keyfile", metavar="FILE", help="TLS private key (PEM)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="myevents", description="The MyEvents event and booking services.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run both services (embedded SQLite unless configured otherwise)")
    _common(serve)
    serve.add_argument("--event-bind", metavar="HOST:PORT", default=DEFAULT_BINDS["events"])
    serve.add_argument("--booking-bind", metavar="HOST:PORT", default=DEFAULT_BINDS["booking"])
    for p in (serve, sub.add_parser("event-service", help="run the events service alone")):
        p.add_argument("--booking-url", metavar="URL", help=_BOOKING_URL_HELP)
    for p in (serve, sub.add_parser("booking-service", help="run the booking service alone")):
        p.add_argument("--ui-origins", metavar="URL,...", help=_UI_ORIGINS_HELP)
    for name, service in (("event-service", "events"), ("booking-service", "booking")):
        p = sub.choices[name]
        _common(p)
        p.add_argument("--bind", metavar="HOST:PORT", help=f"listen address (default {DEFAULT_BINDS[service]})")
    rebuild = sub.add_parser(
        "rebuild",
        help="rebuild the booking service's copy of events and locations from the broker's history",
        description="Wipe the booking service's copy of events and locations and read it again from the history"
        " the broker keeps; bookings are kept and seats left recomputed. Stop the booking service first.",
    )
    rebuild.add_argument("--config", metavar="FILE", help="a config.json with the original's keys (or MYEVENTS_CONFIG)")
    rebuild.add_argument("--data-dir", metavar="DIR", help="where embedded SQLite keeps its files (default ./data)")
    rebuild.add_argument(
        "--into",
        metavar="STORE_URL",
        help="rebuild into this (fresh) store, copying the bookings there; the service's store is only read",
    )
    rebuild.add_argument(
        "--idle",
        type=_seconds,
        default=IDLE_SECONDS,
        metavar="SECONDS",
        help=f"the history is read once nothing arrived for this long (default {IDLE_SECONDS:g})",
    )
    rebuild.add_argument(
        "--wait",
        type=_seconds,
        default=WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for the first message before concluding there is none (default {WAIT_SECONDS:g})",
    )
    token = sub.add_parser(
        "token",
        help="print a token for local use: 'token organizer', 'token user ann'",
        description="Print a signed token (and nothing else), with the secret the services use.",
    )
    token.add_argument("role", choices=tokens.ROLES)
    token.add_argument("subject", nargs="?", help="the user id (required for a user; default: the role's name)")
    token.add_argument("--ttl", type=_duration, default=DEFAULT_TTL, metavar="DURATION", help="e.g. 3600, 30m, 12h, 7d")
    token.add_argument("--config", metavar="FILE", help="a config.json (or MYEVENTS_CONFIG)")
    token.add_argument("--data-dir", metavar="DIR", help="where the default secret is kept (default ./data)")
    return parser


_BOOKING_URL_HELP = "the booking service's URL the web front end calls (or MYEVENTS_BOOKING_URL)"
_UI_ORIGINS_HELP = "origins of the web front end allowed to call the booking service (or MYEVENTS_UI_ORIGINS)"

#: ``myevents rebuild``: seconds without a message after which the history is read, and seconds to wait for the
#: first one (joining a Kafka group takes a few) before concluding that the broker kept none.
IDLE_SECONDS, WAIT_SECONDS = 3.0, 60.0

#: How long a token of ``myevents token`` is valid unless told.
DEFAULT_TTL = 12 * 3600
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if m is None or int(m[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 30m, 12h or 7d")
    return int(m[1]) * _UNITS[m[2]]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and 3600")
    return value


def _rebuild(args: argparse.Namespace) -> int:
    from myevents.booking.rebuild import check_replay, rebuild
    from myevents.runtime import open_backends
    from pubsubkit.urls import redact

    cfg = config.load("booking", config_file=args.config, data_dir=args.data_dir)
    level = cfg.log_level if "MYEVENTS_LOG_LEVEL" in os.environ else "warning"
    logs.configure("rebuild", level)
    if args.into is not None and args.into == cfg.store_url:
        print("myevents: error: --into names the booking service's own store: leave --into out", file=sys.stderr)
        return 2

    def progress(line: str) -> None:
        print(f"myevents rebuild: {line}", file=sys.stderr, flush=True)

    backends = open_backends(cfg.broker_url, cfg.store_url)
    target = None
    begun = False
    try:
        check_replay(backends.broker)
        backends.broker.ping()
        backends.store.ping()
        if args.into is not None:
            target = pubsubkit.open_store(args.into, pm=backends.broker.pm)
            target.ping()
        progress(f"broker {backends.broker.url}, store {redact((target or backends.store).url)}")
        begun = True
        result = rebuild(
            backends.broker,
            target or backends.store,
            source=backends.store if target is not None else None,
            idle=args.idle,
            wait=args.wait,
            progress=progress,
        )
    except pubsubkit.ConnectionLost as exc:
        after = "; the copy may be incomplete: run myevents rebuild again" if begun else ""
        print(
            f"myevents: error: {exc}; check MYEVENTS_BROKER_URL and MYEVENTS_STORE_URL (or the config file, or"
            f" --into) and that the servers run{after}",
            file=sys.stderr,
        )
        return 1
    finally:
        if target is not None:
            target.close()
        backends.close()
    if result.failed:
        progress(f"{result.failed} messages failed (dead letters of group {result.group}): the copy misses them")
    if result.after[0] < result.before[0] or result.after[1] < result.before[1]:
        progress(
            f"the copy had {result.before[0]} events and {result.before[1]} locations before, {result.after[0]} and"
            f" {result.after[1]} now: the broker no longer keeps part of the history (retention), or it arrived"
            " too slowly (raise --idle)"
        )
    if result.orphans:
        progress(f"{result.orphans} events with bookings are not in the rebuilt copy")
    if target is not None and result.complete:
        progress(f"now start the booking service with MYEVENTS_STORE_URL={redact(target.url)}")
    return 0 if result.complete else 1


def _token(args: argparse.Namespace) -> int:
    subject = args.subject or (args.role if args.role == "organizer" else None)
    if subject is None:
        print("myevents: error: name the user: myevents token user NAME", file=sys.stderr)
        return 2
    if not tokens.SUBJECT.fullmatch(subject):
        print(f"myevents: error: {subject!r} is not a user id (1 to 64 letters, digits, _.@-)", file=sys.stderr)
        return 2
    cfg = config.load("events", config_file=args.config, data_dir=args.data_dir)
    print(tokens.issue(tokens.settings(cfg), args.role, subject, args.ttl))
    return 0


def _load(service: Service, args: argparse.Namespace, bind: str | None) -> Config:
    return config.load(
        service,
        config_file=args.config,
        bind=bind,
        data_dir=args.data_dir,
        workers=args.workers,
        certfile=args.certfile,
        keyfile=args.keyfile,
        booking_url=getattr(args, "booking_url", None),
        ui_origins=getattr(args, "ui_origins", None),
    )


def _passed_on(args: argparse.Namespace, cfg: Config) -> list[str]:
    """The flags ``serve`` gives each child, so both load the configuration it checked."""
    out = ["--data-dir", cfg.data_dir]
    for flag in ("config", "workers", "certfile", "keyfile"):
        value = getattr(args, flag)
        if value is not None:
            out += [f"--{flag}", str(value)]
    return out


def _origins(url: str) -> list[str]:
    """``url``, and its other name when it is on this machine (a page may be opened as either)."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    other = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}.get(host)
    return [url] if other is None else [url, f"{scheme}://{other}:{port}"]


def _serve(args: argparse.Namespace) -> int:
    from myevents.server import check_backends, child_command, supervise

    configs = [_load("events", args, args.event_bind), _load("booking", args, args.booking_bind)]
    # Unless told, the front end calls the booking service started here, which answers the event service's pages.
    booking_url = args.booking_url or os.environ.get("MYEVENTS_BOOKING_URL") or configs[1].base_url
    ui_origins = args.ui_origins or os.environ.get("MYEVENTS_UI_ORIGINS") or ",".join(_origins(configs[0].base_url))
    logs.configure("myevents", configs[0].log_level)
    for cfg in configs:
        check_backends(cfg)
        tokens.settings(cfg)  # makes the data directory's secret, if needed, before both services read it
    commands = [
        child_command(
            ["event-service", "--bind", configs[0].bind, "--booking-url", booking_url, *_passed_on(args, configs[0])]
        ),
        child_command(
            ["booking-service", "--bind", configs[1].bind, "--ui-origins", ui_origins, *_passed_on(args, configs[1])]
        ),
    ]
    print(f"event service:   {configs[0].base_url}", flush=True)
    print(f"booking service: {configs[1].base_url}", flush=True)
    print(f"web front end:   {configs[0].base_url}/ui/", flush=True)
    print(f"broker {configs[0].broker_url}; Ctrl-C stops both", flush=True)
    return supervise(commands)


def _one(service: Service, args: argparse.Namespace) -> int:
    from myevents.server import ServiceApplication, check_backends

    cfg = _load(service, args, args.bind)
    check_backends(cfg)
    tokens.settings(cfg)
    logs.configure(service, cfg.log_level)
    ServiceApplication(cfg).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            return _token(args)
        if args.command == "rebuild":
            return _rebuild(args)
        return _one("events" if args.command == "event-service" else "booking", args)
    except PubsubkitError as exc:
        print(f"myevents: error: {exc}", file=sys.stderr)
        return 2
