"""pubsubkit's asyncio faces on a broker, in the same run as the sync figures: ``await emit_many`` of batches of
100 (the sync case ``emit batch 100 confirmed``), 100 tasks each awaiting one ``emit`` at a time, and a listener
served in the loop whose ``async def`` handler counts (the sync case ``consume ack-after``). A heartbeat task on
the loop wakes every 10 ms while the emits run; its largest lateness is a row of its own (in ms). Then sync and
async batches in turns (``... in turns``), the pair the emit target compares.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pubsubkit
from bench.brokers import BATCH, SCENARIO
from bench.common import Row, Ticket, WarmUp, guarded, progress, rate_row, run_name, ticket

TASKS = 100


class AsyncCounter:
    """An ``async def`` handler that counts; held at a gate until the emits are done (as the sync Counter)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.gate = threading.Event()
        self.done = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    async def __call__(self, event: Any, msg: Any) -> None:
        if not self.gate.is_set():
            await asyncio.to_thread(self.gate.wait)
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if self.count >= self.n:
            self.loop.call_soon_threadsafe(self.done.set)


async def _heartbeat(stop: asyncio.Event, late: list[float]) -> None:
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.01)
        late.append(time.monotonic() - before - 0.01)


async def _roundtrip(backend: str, url: str, n: int, timeout: float) -> list[Row]:
    broker = pubsubkit.open_broker(url)
    rows: list[Row] = []
    per_task = max(1, n // 10 // TASKS)
    try:
        counter = AsyncCounter(n + per_task * TASKS)
        listener = broker.listener(run_name("agroup"), poll_interval=0.05)
        listener.add_handler(Ticket, counter)
        serving = asyncio.create_task(listener.serve())
        try:
            if not await asyncio.to_thread(listener.wait_ready, timeout):
                raise TimeoutError("the listener did not join its group")
            emitter = broker.async_emitter()
            await emitter.emit(WarmUp())
            rows += await _emits(backend, emitter, n, per_task)
            await emitter.aclose()
            counter.gate.set()
            await asyncio.wait_for(counter.done.wait(), timeout)
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        case = "async consume ack-after"
        rows.append(rate_row(SCENARIO, backend, "pubsubkit", case, counter.count, counter.last - counter.first))
    finally:
        broker.close()
    return rows


async def _emits(backend: str, emitter: pubsubkit.AsyncEmitter, n: int, per_task: int) -> list[Row]:
    """Batches of 100 awaited one after another, then 100 tasks each awaiting one emit at a time, with the
    heartbeat measured throughout."""
    events = [(ticket(i), f"k{i % 100}") for i in range(n)]
    stop, late = asyncio.Event(), list[float]()
    beat = asyncio.create_task(_heartbeat(stop, late))
    start = time.perf_counter()
    for i in range(0, n, BATCH):
        await emitter.emit_many(events[i : i + BATCH])
    rows = [
        rate_row(SCENARIO, backend, "pubsubkit", f"async emit batch {BATCH} confirmed", n, time.perf_counter() - start)
    ]
    start = time.perf_counter()

    async def one_by_one(first: int) -> None:
        for j in range(first, first + per_task):
            await emitter.emit(ticket(j), key=f"k{j % 100}")

    await asyncio.gather(*(one_by_one(t * per_task) for t in range(TASKS)))
    seconds = time.perf_counter() - start
    rows.append(rate_row(SCENARIO, backend, "pubsubkit", f"async emit one, {TASKS} tasks", per_task * TASKS, seconds))
    stop.set()
    await beat
    rows += await _interleaved(backend, emitter, events)
    worst = max(late) * 1000 if late else 0.0
    progress(
        f"  {backend:8} pubsubkit  heartbeat during the async emits: {worst:.1f} ms late at most ({len(late)} beats)"
    )
    rows.append(Row(SCENARIO, backend, "pubsubkit", "async emit: heartbeat late at most", worst, "ms", len(late)))
    return rows


async def _interleaved(
    backend: str, emitter: pubsubkit.AsyncEmitter, events: list[tuple[Any, str]], rounds: int = 3
) -> list[Row]:
    """Sync and async batches of 100 in turns (``rounds`` of each, a third of the events per round): the ratio of
    the two is not skewed by what the broker does between scenarios."""
    sync_emitter = emitter.emitter
    took = {"sync": 0.0, "async": 0.0}
    count = {"sync": 0, "async": 0}
    share = max(BATCH, len(events) // rounds)
    for r in range(rounds):
        part = events[r * share : (r + 1) * share]
        start = time.perf_counter()
        for i in range(0, len(part), BATCH):
            sync_emitter.emit_many(part[i : i + BATCH])  # blocks the loop: nothing else runs meanwhile
        took["sync"] += time.perf_counter() - start
        count["sync"] += len(part)
        start = time.perf_counter()
        for i in range(0, len(part), BATCH):
            await emitter.emit_many(part[i : i + BATCH])
        took["async"] += time.perf_counter() - start
        count["async"] += len(part)
    case = f"emit batch {BATCH} confirmed, in turns"
    return [
        rate_row(SCENARIO, backend, "pubsubkit", f"sync {case}", count["sync"], took["sync"]),
        rate_row(SCENARIO, backend, "pubsubkit", f"async {case}", count["async"], took["async"]),
    ]


def pubsubkit_async_rows(backend: str, url: str, n: int, timeout: float) -> list[Row]:
    """The asyncio rows of a broker (a fresh group reads what the async emits published, from the start)."""
    return guarded(SCENARIO, backend, "pubsubkit", "async", lambda: asyncio.run(_roundtrip(backend, url, n, timeout)))
