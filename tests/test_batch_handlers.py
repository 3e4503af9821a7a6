"""Batch handlers on the memory bus: the argument checks, order next to handlers one by one, async batch
handlers, and a held batch on stop. What every backend must do with batches is in the conformance cases 32 to
34 (pubsubkit.testing)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import attrs
import pytest

import pubsubkit
from pubsubkit.testing import unique_name


@pubsubkit.event("batchTestOne")
@attrs.frozen
class One:
    n: int


@pubsubkit.event("batchTestOther")
@attrs.frozen
class Other:
    n: int


def wait(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def broker() -> Any:
    with pubsubkit.open_broker(f"memory://{unique_name('batch')}") as b:
        yield b


def test_max_size_above_max_in_flight_is_refused_naming_the_fix(broker: pubsubkit.Broker) -> None:
    listener = broker.listener("g", max_in_flight=50)
    with pytest.raises(
        pubsubkit.ConfigError, match=r"max_size=100\) is more than .*max_in_flight=50.*max_in_flight=100"
    ):
        listener.on_batch(One, max_size=100)(lambda events, batch: None)


@pytest.mark.parametrize(("option", "value"), [("max_size", 0), ("max_size", 2.5), ("max_wait", -1)])
def test_bad_limits_are_refused(broker: pubsubkit.Broker, option: str, value: Any) -> None:
    with pytest.raises(pubsubkit.ConfigError, match=option):
        broker.listener("g").on_batch(One, **{option: value})(lambda events, batch: None)


def test_one_type_is_handled_in_batches_or_one_by_one_not_both(broker: pubsubkit.Broker) -> None:
    listener = broker.listener("g")
    listener.on(One)(lambda event, msg: None)
    with pytest.raises(pubsubkit.ConfigError, match="either by one batch handler or one by one"):
        listener.on_batch(One)(lambda events, batch: None)
    listener.on_batch(Other)(lambda events, batch: None)
    with pytest.raises(pubsubkit.ConfigError, match="has a batch handler"):
        listener.on(Other)(lambda event, msg: None)
    with pytest.raises(pubsubkit.ConfigError, match="UnknownEvent cannot"):
        listener.on_batch(pubsubkit.UnknownEvent)(lambda events, batch: None)
    with pytest.raises(TypeError, match="cannot be called as fn"):
        listener.on_batch("batchTestThird")(lambda events: None)
    assert listener.names == ["batchTestOne", "batchTestOther"]


def test_order_per_key_holds_between_batches_and_handlers_one_by_one(broker: pubsubkit.Broker) -> None:
    """A message of another handler runs what the lane holds first: one key's events stay in publish order."""
    seen: list[int] = []
    lock = threading.Lock()
    listener = broker.listener("g", concurrency=1, max_in_flight=100, poll_interval=0.05)

    @listener.on_batch(One, max_size=10, max_wait=5.0)
    def ones(events: list[One], batch: pubsubkit.Batch) -> None:
        with lock:
            seen.extend(e.n for e in events)

    @listener.on(Other)
    def other(event: Other, msg: pubsubkit.Message) -> None:
        with lock:
            seen.append(event.n)

    listener.start()
    listener.wait_ready(10)
    events = [(Other(i) if i % 7 == 3 else One(i), "k") for i in range(60)]
    broker.emitter().emit_many(events)
    wait(lambda: len(seen) >= 60)  # max_wait is 5 s: the others and full batches run them, not the clock
    listener.close()
    assert seen == list(range(60))


@pytest.mark.parametrize("with_async_neighbour", [False, True])
def test_async_batch_handler(broker: pubsubkit.Broker, with_async_neighbour: bool) -> None:
    """An ``async def`` batch handler runs on the listener's loop, on thread lanes and on async lanes alike."""
    got: list[int] = []
    loops: set[int] = set()
    listener = broker.listener("g", max_in_flight=100, poll_interval=0.05)

    @listener.on_batch(One, max_size=25, max_wait=0.05)
    async def ones(events: list[One], batch: pubsubkit.Batch) -> None:
        await asyncio.sleep(0)
        loops.add(id(asyncio.get_running_loop()))
        got.extend(e.n for e in events)

    if with_async_neighbour:

        @listener.on(Other)
        async def other(event: Other, msg: pubsubkit.Message) -> None:
            loops.add(id(asyncio.get_running_loop()))

    listener.start()
    listener.wait_ready(10)
    broker.emitter().emit_many([(One(i), f"k{i % 4}") for i in range(100)] + [(Other(0), "k0")])
    wait(lambda: len(got) >= 100)
    listener.close()
    assert sorted(got) == list(range(100))
    assert len(loops) == 1


def test_a_held_batch_runs_on_stop_and_is_acknowledged(broker: pubsubkit.Broker) -> None:
    got: list[int] = []
    listener = broker.listener("g", max_in_flight=100, poll_interval=0.05, lag_interval=0)

    @listener.on_batch(One, max_size=100, max_wait=60.0)
    def ones(events: list[One], batch: pubsubkit.Batch) -> None:
        got.extend(e.n for e in events)

    listener.start()
    listener.wait_ready(10)
    broker.emitter().emit_many([(One(i), "k") for i in range(5)])
    time.sleep(0.3)  # received and held by the lane
    assert got == []  # held: neither full nor due
    assert listener.close(timeout=10)
    assert got == [0, 1, 2, 3, 4]
    lag = broker.transport.lag("g")
    assert lag is not None
    assert sum(lag.values()) == 0
