"""Run the benchmarks: ``python bench/run.py all|codec|sqlite|kafka|rabbitmq|sqs|http|latency|rss [--quick]``.

Each scenario prints its table and the targets it checks (ratio and whether met), and writes
``<out>/<scenario>.json``. ``all`` runs every scenario, then regenerates the tables of docs/benchmarks.md and
the plot docs/img/throughput.png. The broker scenarios need the test servers (``scripts/servers up``) and their
addresses in the environment (``eval "$(scripts/servers env)"``); pubsubkit's side of a broker whose plugin is not
installed is recorded as skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.brokers import BATCH
from bench.common import (
    BROKER_URLS,
    ROOT,
    Row,
    Target,
    find,
    installed_scheme,
    progress,
    rows_table,
    run_name,
    targets_table,
    wait_server,
    write_json,
)

BROKERS = ("kafka", "rabbitmq", "sqs")
SCENARIOS = ("codec", "sqlite", *BROKERS, "http", "latency", "rss")

#: Messages per broker measurement: (full, quick).
SIZES = {"kafka": (20000, 2000), "rabbitmq": (10000, 1000), "sqs": (600, 200), "sqlite": (10000, 1000)}


def best(rows: list[Row], backend: str, client: str, prefix: str, without: str = "unconfirmed") -> float | None:
    """The best figure of a client on a broker among the cases starting with ``prefix``."""
    values = [
        r.value
        for r in rows
        if r.backend == backend
        and r.client == client
        and r.case.startswith(prefix)
        and without not in r.case
        and r.value is not None
    ]
    return max(values) if values else None


def peer_target(name: str, value: float | None, peer: float | None, raw: float | None) -> Target:
    """Against a peer at the same guarantee: the better of 5x the peer and 0.9x the raw client, i.e. the lower of
    the two bars (5x a peer already near the raw client is more than the raw client does)."""
    bars = [x for x in (None if peer is None else 5 * peer, None if raw is None else 0.9 * raw) if x is not None]
    return Target(f"{name} (5x it, or 0.9x raw if lower)", value, min(bars) if bars else None, 1.0)


def broker_targets(backend: str, rows: list[Row]) -> list[Target]:
    """The goals of docs/benchmarks.md, from one run's rows of one broker. Emits compare best confirmed runs
    (pubsubkit's batches of 100 or all in one call; the baselines' flush per 100 or at the end); RabbitMQ's emit
    compares with pika unconfirmed, as its goal says."""
    hand = "hand-written"
    best_emit = best(rows, backend, "pubsubkit", "emit")
    consume = find(rows, backend, "pubsubkit", "consume ack-after")
    batch = find(rows, backend, "pubsubkit", "consume batch handler 500")
    raw_emit = best(rows, backend, "raw", "emit")
    raw_consume = best(rows, backend, "raw", "consume")
    hand_emit, hand_consume = best(rows, backend, hand, "emit"), best(rows, backend, hand, "consume")
    targets: list[Target] = []
    if backend == "kafka":
        targets += [
            Target("kafka: emit vs hand-written", best_emit, hand_emit, 0.9),
            Target("kafka: emit vs raw bytes", best_emit, raw_emit, 0.5),
            Target("kafka: consume vs hand-written", consume, hand_consume, 0.9),
            Target("kafka: consume vs raw bytes", consume, raw_consume, 0.5),
            Target("kafka: batch handler consume vs raw bytes", batch, raw_consume, 0.8),
        ]
    elif backend == "rabbitmq":
        raw_plain = find(rows, backend, "raw", "emit persistent unconfirmed")
        targets += [
            Target("rabbitmq: emit vs raw unconfirmed", best_emit, raw_plain, 0.9),
            Target("rabbitmq: emit vs hand-written (confirms)", best_emit, hand_emit, 0.9),
            Target("rabbitmq: consume vs raw", consume, raw_consume, 0.9),
            Target("rabbitmq: consume vs hand-written", consume, hand_consume, 0.9),
            Target("rabbitmq: batch handler consume vs raw", batch, raw_consume, 0.9),
        ]
    else:
        targets += [
            Target(f"{backend}: emit vs hand-written", best_emit, hand_emit, 0.9),
            Target(f"{backend}: emit vs raw best", best_emit, raw_emit, 0.8),
            Target(f"{backend}: consume vs hand-written", consume, hand_consume, 0.9),
            Target(f"{backend}: consume vs raw best", consume, raw_consume, 0.8),
        ]
    if any(r.case.startswith("async") for r in rows):  # the asyncio faces against the sync ones, same run
        targets += async_targets(backend, rows, consume)
    emit = find(rows, backend, "pubsubkit", f"emit batch {BATCH} confirmed")
    for peer in ("faststream", "kombu"):
        if any(r.client == peer for r in rows):
            raw_bar = find(rows, backend, "raw", "emit persistent unconfirmed") if backend == "rabbitmq" else raw_emit
            targets.append(peer_target(f"{backend}: emit vs {peer}", emit, best(rows, backend, peer, "emit"), raw_bar))
            peer_consume = best(rows, backend, peer, "consume")
            targets.append(peer_target(f"{backend}: consume vs {peer}", consume, peer_consume, raw_consume))
    return targets


def async_targets(backend: str, rows: list[Row], consume: float | None) -> list[Target]:
    """The asyncio faces against the sync ones, in the same run."""
    return [
        Target(
            f"{backend}: async emit vs sync (batches of 100, in turns)",
            find(rows, backend, "pubsubkit", "async emit batch 100 confirmed, in turns"),
            find(rows, backend, "pubsubkit", "sync emit batch 100 confirmed, in turns"),
            0.9,
        ),
        Target(
            f"{backend}: async consume vs sync",
            find(rows, backend, "pubsubkit", "async consume ack-after"),
            consume,
            0.9,
        ),
        Target(
            f"{backend}: heartbeat late during async emits (ms)",
            find(rows, backend, "pubsubkit", "async emit: heartbeat late at most"),
            50.0,
            1.0,
            "<=",
        ),
    ]


def broker(backend: str, quick: bool) -> tuple[list[Row], list[Target]]:
    """pubsubkit, the raw client and the peers on one broker, in this order, in one run."""
    from bench.brokers import pubsubkit_rows, raw_rows
    from bench.handwritten import handwritten_rows
    from bench.peers import faststream_rows, kombu_rows

    n = SIZES[backend][quick]
    timeout = 90.0
    if not wait_server(backend):
        progress(f"{backend}: the test server does not answer (scripts/servers up)")
    url = BROKER_URLS[backend](run_name("psk"))
    reason = installed_scheme(url)
    progress(f"{backend}: pubsubkit, {n} messages ({url.split('?')[0]})")
    rows = pubsubkit_rows(backend, url, reason, n, timeout)
    if backend in ("kafka", "rabbitmq") and reason is None:
        from bench.asyncio_bench import pubsubkit_async_rows

        rows += pubsubkit_async_rows(backend, BROKER_URLS[backend](run_name("psa")), n, timeout)
    rows += raw_rows(backend, n, timeout)
    rows += handwritten_rows(backend, n, timeout)
    if backend in ("kafka", "rabbitmq"):
        rows += faststream_rows(backend, n, timeout)
    if backend == "rabbitmq":
        rows += kombu_rows(n, timeout)
    for r in rows:
        r.scenario = backend
    return rows, broker_targets(backend, rows)


def scenario(name: str, quick: bool) -> tuple[list[Row], list[Target]]:
    """Run one scenario; its rows and targets."""
    from bench import local

    def service(fn: str) -> Callable[[], tuple[list[Row], list[Target]]]:
        def go() -> tuple[list[Row], list[Target]]:
            from bench import services

            result: tuple[list[Row], list[Target]] = getattr(services, fn)(quick)
            return result

        return go

    table: dict[str, Callable[[], tuple[list[Row], list[Target]]]] = {
        "codec": lambda: local.codec(20000 if quick else 200000),
        "sqlite": lambda: local.sqlite(SIZES["sqlite"][quick], 120.0),
        "http": service("http_throughput"),
        "latency": service("latency"),
        "rss": service("rss"),
    }
    if name in BROKERS:
        return broker(name, quick)
    return table[name]()


#: Modules of the ``bench`` dependency group.
NEEDED = ("matplotlib", "psutil", "confluent_kafka", "pika", "boto3", "faststream", "kombu")
INSTALL = ".venv/bin/uv pip install --python .venv/bin/python --group bench"


#: The optional plugin left out of the figures unless --with-tracing: what it costs is bench/otel_cost.py's.
TRACING_PLUGIN = "otel"


def missing() -> list[str]:
    """The modules of the ``bench`` dependency group that cannot be imported."""
    import importlib.util

    return [m for m in NEEDED if importlib.util.find_spec(m) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=("all", *SCENARIOS, "report"), help="report: only redo the docs")
    parser.add_argument("--quick", action="store_true", help="small sizes, for trying things out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    parser.add_argument("--no-docs", action="store_true", help="with all: do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--with-tracing", action="store_true", help=f"keep the tracing plugin ({TRACING_PLUGIN}) on, if installed"
    )
    args = parser.parse_args(argv)
    if absent := missing():
        print(f"bench: missing {', '.join(absent)}: install the bench group first:\n  {INSTALL}", file=sys.stderr)
        return 2
    if args.scenario == "report":
        from bench import report

        report.regenerate(args.out)
        return 0
    if not args.with_tracing:  # as if pubsubkit-otel were not installed (bench/otel_cost.py measures it)
        disabled = {n.strip() for n in os.environ.get("PUBSUBKIT_DISABLE_PLUGINS", "").split(",") if n.strip()}
        os.environ["PUBSUBKIT_DISABLE_PLUGINS"] = ",".join(sorted(disabled | {TRACING_PLUGIN}))  # services too
        progress(f"the tracing plugin ({TRACING_PLUGIN}) is disabled: --with-tracing keeps it")
    names = SCENARIOS if args.scenario == "all" else (args.scenario,)
    started = time.monotonic()
    for name in names:
        progress(f"== {name}{' (quick)' if args.quick else ''}")
        t0 = time.monotonic()
        try:
            rows, targets = scenario(name, args.quick)
        except Exception as exc:  # one broken scenario must not cost the others' figures
            traceback.print_exc()
            rows, targets = [Row(name, "-", "-", "all", skipped=f"failed: {type(exc).__name__}: {exc}"[:300])], []
        path = write_json(args.out, name, rows, targets, args.quick)
        print(f"\n## {name} ({time.monotonic() - t0:.0f} s)\n\n{rows_table(rows)}\n")
        if targets:
            print(f"{targets_table(targets)}\n")
        print(f"written: {path}", flush=True)
    if args.scenario == "all" and not args.no_docs:
        from bench import report

        report.regenerate(args.out)
    progress(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
