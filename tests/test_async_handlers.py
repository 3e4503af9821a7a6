"""``async def`` handlers have every guarantee of a sync handler (memory://, where the log can be looked at)."""

from __future__ import annotations

import asyncio
import functools
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest

import pubsubkit
from pubsubkit.testing import wait_until

FAST = pubsubkit.RetryPolicy(attempts=3, initial=0.001, multiplier=1.0, max_delay=0.001, jitter=0.0)


@pubsubkit.event("asyncPing")
@attrs.frozen
class Ping:
    n: int


@pytest.fixture
def broker() -> Iterator[pubsubkit.Broker]:
    b = pubsubkit.open_broker(f"memory://async-{pubsubkit.new_id()}")
    yield b
    b.close()


def backlog(broker: pubsubkit.Broker, group: str) -> int:
    return broker.transport.backlog(group)  # type: ignore[attr-defined, no-any-return]


def test_an_async_handler_is_awaited_before_its_message_is_acknowledged(broker: pubsubkit.Broker) -> None:
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    listener = broker.listener("g", poll_interval=0.02)

    @listener.on(Ping)
    async def handle(event: Ping, msg: pubsubkit.Message) -> None:
        started.set()
        await asyncio.to_thread(release.wait, 10)
        await asyncio.sleep(0.01)
        done.set()

    listener.start()
    try:
        broker.emitter().emit(Ping(n=1))
        assert started.wait(10)
        for _ in range(20):  # the body is suspended on its await: the message is held, not acknowledged
            assert backlog(broker, "g") == 1
            assert not done.is_set()
        release.set()
        wait_until(lambda: backlog(broker, "g") == 0, 10, "the acknowledgement after the body finished")
        assert done.is_set()
    finally:
        release.set()
        listener.close()


def test_a_coroutine_that_raises_is_retried_and_dead_lettered(broker: pubsubkit.Broker) -> None:
    attempts: list[int] = []
    listener = broker.listener("g", poll_interval=0.02, retry=FAST)

    @listener.on(Ping)
    async def handle(event: Ping, msg: pubsubkit.Message) -> None:
        attempts.append(msg.attempt)
        await asyncio.sleep(0)
        raise ValueError(f"no {event.n}")

    listener.start()
    try:
        env = broker.emitter().emit(Ping(n=7))
        wait_until(lambda: broker.transport.dead_letters("g"), 10, "the dead letter")
    finally:
        listener.close()
    [letter] = broker.transport.dead_letters("g")
    assert letter.envelope is not None
    assert letter.envelope.id == env.id
    assert letter.attempts == 3
    assert "ValueError: no 7" in letter.error
    assert len(attempts) == 3
    assert backlog(broker, "g") == 0


def test_async_handlers_of_several_messages_run_concurrently(broker: pubsubkit.Broker) -> None:
    """Each lane waits for its own coroutine; the loop runs those of several lanes at a time."""
    inside = 0
    most = 0
    listener = broker.listener("g", poll_interval=0.02, concurrency=4)

    @listener.on(Ping)
    async def handle(event: Ping, msg: pubsubkit.Message) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.2)
        inside -= 1

    listener.start()
    try:
        broker.emitter().emit_many([(Ping(n=i), f"k{i}") for i in range(8)])
        wait_until(lambda: listener.handled == 8, 20, "8 messages handled")
    finally:
        listener.close()
    assert most > 1


class Methods:
    def __init__(self) -> None:
        self.seen: list[int] = []

    async def on_ping(self, event: Ping, msg: pubsubkit.Message) -> None:
        self.seen.append(event.n)

    async def __call__(self, event: Ping, msg: pubsubkit.Message) -> None:
        self.seen.append(-event.n)


def test_methods_partials_and_callable_objects_are_awaited(broker: pubsubkit.Broker) -> None:
    obj = Methods()

    async def tagged(tag: int, event: Ping, msg: pubsubkit.Message) -> None:
        obj.seen.append(tag * 100 + event.n)

    listener = broker.listener("g", poll_interval=0.02)
    listener.add_handler(Ping, obj.on_ping)
    listener.add_handler(Ping, obj)
    listener.add_handler(Ping, functools.partial(tagged, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail the test
        listener.start()
        try:
            broker.emitter().emit(Ping(n=5))
            wait_until(lambda: len(obj.seen) == 3, 10, "three handlers")
        finally:
            listener.close()
    assert sorted(obj.seen) == [-5, 5, 105]


def test_an_async_generator_is_refused_when_added(broker: pubsubkit.Broker) -> None:
    listener = broker.listener("g")

    async def produce(event: Ping, msg: pubsubkit.Message) -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="async generator: a listener runs a handler to its end"):
        listener.add_handler(Ping, produce)
    listener.close()


def test_a_sync_handler_returning_a_coroutine_fails_its_message_with_the_fix(broker: pubsubkit.Broker) -> None:
    async def work() -> None:
        raise AssertionError("never run")

    def handle(event: Ping, msg: pubsubkit.Message) -> Any:
        return work()  # a mistake: the coroutine is returned, not awaited

    listener = broker.listener("g", poll_interval=0.02, retry=FAST)
    listener.add_handler(Ping, handle)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        listener.start()
        try:
            broker.emitter().emit(Ping(n=1))
            wait_until(lambda: broker.transport.dead_letters("g"), 10, "the dead letter")
        finally:
            listener.close()
    [letter] = broker.transport.dead_letters("g")
    assert letter.attempts == 1, "a ConfigError is fatal: not retried"
    assert "define it with async def handle(event, msg)" in letter.error


@attrs.frozen
class Seen:
    id: str
    n: int


def test_an_async_unit_of_work_commits_with_the_inbox_and_a_redelivery_has_one_effect(
    broker: pubsubkit.Broker,
) -> None:
    store = pubsubkit.open_store(f"memory://async-store-{pubsubkit.new_id()}")
    seen = store.collection("seen", Seen)
    listener = broker.listener("g", poll_interval=0.02, store=store)

    @listener.on(Ping)
    async def handle(event: Ping, msg: pubsubkit.Message) -> None:
        async with msg.unit_of_work() as uow:
            uow.insert(seen, Seen(pubsubkit.new_id(), event.n))

    listener.start()
    try:
        emitter = broker.emitter()
        env = emitter.envelope(Ping(n=3))
        emitter.publish([env, env])  # the same message twice
        wait_until(lambda: store.inbox_contains("g", env.id), 10, "the inbox record")
        wait_until(lambda: backlog(broker, "g") == 0, 10, "both settled")
    finally:
        listener.close()
        store.close()
    assert [s.n for s in seen.find()] == [3]


def test_serve_runs_in_the_loop_and_cancelling_it_drains() -> None:
    async def main() -> tuple[list[int], bool]:
        with pubsubkit.open_broker(f"memory://serve-{pubsubkit.new_id()}") as broker:
            got: list[int] = []
            listener = broker.listener("g", poll_interval=0.02)

            @listener.on(Ping)
            async def handle(event: Ping, msg: pubsubkit.Message) -> None:
                await asyncio.sleep(0.05)
                got.append(event.n)

            task = asyncio.create_task(listener.serve())
            emitter = broker.async_emitter()
            await emitter.emit_many([Ping(n=i) for i in range(5)])
            while len(got) < 5:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await emitter.aclose()
            return got, listener.stopped

    got, stopped = asyncio.run(main())
    assert sorted(got) == list(range(5))
    assert stopped


def test_async_with_starts_and_closes_the_listener() -> None:
    async def main() -> bool:
        with pubsubkit.open_broker(f"memory://awith-{pubsubkit.new_id()}") as broker:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            listener = broker.listener("g", poll_interval=0.02)

            @listener.on(Ping)
            def handle(event: Ping, msg: pubsubkit.Message) -> None:
                loop.call_soon_threadsafe(done.set)

            async with listener:
                await broker.async_emitter().emit(Ping(n=1))
                await asyncio.wait_for(done.wait(), 10)
            return listener.stopped

    assert asyncio.run(main())


def test_served_from_a_loop_async_handlers_run_on_that_loop() -> None:
    """So that a handler can use what the application made on its loop (a session, a pool)."""

    async def main() -> set[int]:
        loops: set[int] = set()
        with pubsubkit.open_broker(f"memory://onloop-{pubsubkit.new_id()}") as broker:
            listener = broker.listener("g", poll_interval=0.02)

            @listener.on(Ping)
            async def handle(event: Ping, msg: pubsubkit.Message) -> None:
                loops.add(id(asyncio.get_running_loop()))

            async with listener:
                emitter = broker.async_emitter()
                await emitter.emit_many([Ping(n=i) for i in range(5)])
                while listener.handled < 5:
                    await asyncio.sleep(0.01)
                await emitter.aclose()
        loops.discard(id(asyncio.get_running_loop()))
        return loops

    assert asyncio.run(main()) == set(), "a handler ran on another loop than the application's"


def test_sync_and_async_handlers_of_one_listener_both_run_and_the_sync_one_not_on_the_loop(
    broker: pubsubkit.Broker,
) -> None:
    """A sync handler next to async ones runs in a worker thread, so that it never holds up the loop."""
    ran: list[tuple[str, int]] = []
    on_loop: list[bool] = []
    listener = broker.listener("g", poll_interval=0.02, concurrency=8)

    @listener.on(Ping)
    async def first(event: Ping, msg: pubsubkit.Message) -> None:
        ran.append(("async", event.n))

    @listener.on(Ping)
    def second(event: Ping, msg: pubsubkit.Message) -> None:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        ran.append(("sync", event.n))

    listener.start()
    try:
        broker.emitter().emit_many([Ping(n=i) for i in range(20)])
        wait_until(lambda: listener.handled == 20, 10, "20 messages handled")
    finally:
        listener.close()
    assert sorted(ran) == sorted([("async", i) for i in range(20)] + [("sync", i) for i in range(20)])
    assert on_loop == [False] * 20
    assert backlog(broker, "g") == 0


def test_handler_middleware_wraps_an_async_handler_until_its_coroutine_finished() -> None:
    """A plugin's handler middleware (sync) sees an async handler's call return only after its body ended,
    and sees what it raised."""
    from prometheus_client import CollectorRegistry

    from pubsubkit.plugin import get_plugin_manager, hookimpl

    seen: list[str] = []

    class Wrapper:
        @hookimpl
        def pubsubkit_handler_middleware(self, group: str) -> Any:
            def wrap(call_next: Any) -> Any:
                def call(handler: Any, event: Any, msg: Any) -> Any:
                    seen.append(f"before {event.n}")
                    try:
                        return call_next(handler, event, msg)
                    except Exception as exc:
                        seen.append(f"raised {type(exc).__name__} {event.n}")
                        raise
                    finally:
                        seen.append(f"after {event.n}")

                return call

            return wrap

    pm = get_plugin_manager(metrics_registry=CollectorRegistry())
    pm.register(Wrapper(), name="wrapper")
    broker = pubsubkit.open_broker(f"memory://mw-{pubsubkit.new_id()}", pm=pm)
    try:
        listener = broker.listener("g", poll_interval=0.02, retry=FAST, concurrency=1)

        @listener.on(Ping)
        async def handle(event: Ping, msg: pubsubkit.Message) -> None:
            await asyncio.sleep(0.01)
            seen.append(f"body {event.n}")
            if event.n == 2:
                raise ValueError("no")

        listener.start()
        broker.emitter().emit_many([Ping(n=1), Ping(n=2)])
        wait_until(lambda: len(broker.transport.dead_letters("g")) == 1, 10, "the dead letter of 2")  # type: ignore[attr-defined]
        listener.close()
    finally:
        broker.close()
    assert seen[:3] == ["before 1", "body 1", "after 1"]
    assert seen[3:] == ["before 2", "body 2", "raised ValueError 2", "after 2"] * FAST.attempts


def test_served_listener_leaves_the_loops_default_executor_to_the_application() -> None:
    """Served from a loop whose default executor has one thread, with a sync handler middleware (each async
    handler's call goes through a thread) and handlers that await ``asyncio.to_thread``: the listener's own
    work takes none of the application's threads, so the handlers, ``wait_ready`` and the async emitter's
    close all get theirs (they waited for ever when the listener ran in that executor)."""
    import concurrent.futures

    from prometheus_client import CollectorRegistry

    from pubsubkit.plugin import get_plugin_manager, hookimpl

    class Passing:
        @hookimpl
        def pubsubkit_handler_middleware(self, group: str) -> Any:
            return lambda call_next: call_next

    async def main() -> int:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
        pm = get_plugin_manager(metrics_registry=CollectorRegistry())
        pm.register(Passing(), name="passing")
        broker = pubsubkit.open_broker(f"memory://exec-{pubsubkit.new_id()}", pm=pm)
        gate, got = threading.Event(), []
        try:
            listener = broker.listener("g", poll_interval=0.02, concurrency=4)

            @listener.on(Ping)
            async def handle(event: Ping, msg: pubsubkit.Message) -> None:
                await asyncio.to_thread(gate.wait, 10)
                got.append(event.n)

            serving = asyncio.create_task(listener.serve())
            assert await asyncio.to_thread(listener.wait_ready, 10)
            emitter = broker.async_emitter()
            await emitter.emit_many([(Ping(n=i), f"k{i}") for i in range(20)])
            await emitter.aclose()
            gate.set()
            for _ in range(200):
                if len(got) == 20:
                    break
                await asyncio.sleep(0.05)
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        finally:
            gate.set()
            broker.close()
        return len(got)

    assert asyncio.run(asyncio.wait_for(main(), 30)) == 20


def test_handler_middleware_with_an_awaiting_form_runs_around_the_coroutine_on_the_loop() -> None:
    """A wrapper carrying ``awaiting`` (an async form of itself) wraps an async handler on its loop, in the
    handler's task, without a thread."""
    from prometheus_client import CollectorRegistry

    from pubsubkit.plugin import get_plugin_manager, hookimpl

    seen: list[tuple[str, int, bool]] = []

    class Both:
        @hookimpl
        def pubsubkit_handler_middleware(self, group: str) -> Any:
            def wrap(call_next: Any) -> Any:
                def call(handler: Any, event: Any, msg: Any) -> Any:
                    seen.append(("sync", event.n, False))
                    return call_next(handler, event, msg)

                return call

            def wrap_awaiting(call_next: Any) -> Any:
                async def call(handler: Any, event: Any, msg: Any) -> Any:
                    on_loop = threading.current_thread() is loop_thread
                    seen.append(("before", event.n, on_loop))
                    try:
                        return await call_next(handler, event, msg)
                    finally:
                        seen.append(("after", event.n, on_loop))

                return call

            wrap.awaiting = wrap_awaiting  # type: ignore[attr-defined]
            return wrap

    loop_thread: threading.Thread | None = None

    async def main() -> None:
        nonlocal loop_thread
        loop_thread = threading.current_thread()
        pm = get_plugin_manager(metrics_registry=CollectorRegistry())
        pm.register(Both(), name="both")
        broker = pubsubkit.open_broker(f"memory://aw-{pubsubkit.new_id()}", pm=pm)
        try:
            listener = broker.listener("g", poll_interval=0.02, concurrency=1)

            @listener.on(Ping)
            async def handle(event: Ping, msg: pubsubkit.Message) -> None:
                await asyncio.sleep(0.001)
                seen.append(("body", event.n, threading.current_thread() is loop_thread))

            async with listener:
                await asyncio.to_thread(broker.emitter().emit_many, [Ping(n=1), Ping(n=2)])
                for _ in range(200):
                    if listener.handled == 2:
                        break
                    await asyncio.sleep(0.02)
        finally:
            broker.close()

    asyncio.run(main())
    assert seen == [(step, n, True) for n in (1, 2) for step in ("before", "body", "after")]
