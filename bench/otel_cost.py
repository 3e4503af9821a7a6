"""What the tracing plugin costs per message: ``python bench/otel_cost.py [URL] [--n N]`` in an environment with
pubsubkit-otel installed (``tox -e otel --notest``, then ``.tox/otel/bin/python bench/otel_cost.py``).

Emits N events (batches of 100, confirmed) and consumes them (ack after handling), three ways in one run: the
plugin disabled (``PUBSUBKIT_DISABLE_PLUGINS=otel``, as if not installed), installed without a tracer provider
(OpenTelemetry's no-op API), and installed with the SDK's provider recording every span to no exporter. Prints
microseconds per message of each and the difference to the first.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import attrs
from prometheus_client import CollectorRegistry

import pubsubkit


@pubsubkit.event("benchTraced")
@attrs.frozen
class Traced:
    n: int
    note: str = "x" * 200


def _round(url: str, n: int, disabled: bool) -> tuple[float, float]:
    import os

    if disabled:
        os.environ["PUBSUBKIT_DISABLE_PLUGINS"] = "otel"
    else:
        os.environ.pop("PUBSUBKIT_DISABLE_PLUGINS", None)
    pm = pubsubkit.get_plugin_manager(metrics_registry=CollectorRegistry())
    assert (pm.get_plugin("otel") is None) == disabled
    broker = pubsubkit.open_broker(f"{url}-{pubsubkit.new_id()}" if url.startswith("memory") else url, pm=pm)
    try:
        emitter = broker.emitter()
        start = time.perf_counter()
        for i in range(0, n, 100):
            emitter.emit_many([Traced(j) for j in range(i, min(n, i + 100))])
        emit = (time.perf_counter() - start) / n
        done, count, first = threading.Event(), [0], [0.0]

        def handle(event: Any, msg: Any) -> None:
            if count[0] == 0:
                first[0] = time.perf_counter()  # the group's join is not the plugin's cost
            count[0] += 1
            if count[0] >= n:
                done.set()

        listener = broker.listener(f"bench-{pubsubkit.new_id()}", poll_interval=0.05, lag_interval=0)
        listener.add_handler(Traced, handle)
        listener.start()
        done.wait(300)
        consume = (time.perf_counter() - first[0]) / max(1, count[0] - 1)
        listener.close()
        return emit, consume
    finally:
        broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="memory://otel-bench")
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    rows = [("not loaded", *_round(args.url, args.n, disabled=True))]
    rows.append(("loaded, no tracer provider", *_round(args.url, args.n, disabled=False)))
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())  # records every span, exports none
    rows.append(("loaded, SDK provider, no exporter", *_round(args.url, args.n, disabled=False)))
    base_emit, base_consume = rows[0][1], rows[0][2]
    print(f"{args.n} messages on {args.url}; microseconds per message")
    print(f"{'plugin':36} {'emit':>8} {'+':>7} {'consume':>8} {'+':>7}")
    for name, emit, consume in rows:
        print(
            f"{name:36} {emit * 1e6:8.1f} {(emit - base_emit) * 1e6:+7.1f}"
            f" {consume * 1e6:8.1f} {(consume - base_consume) * 1e6:+7.1f}"
        )


if __name__ == "__main__":
    main()
