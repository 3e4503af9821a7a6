"""Fixtures shared by the messaging cases: sizes, per-test names, plugin manager, brokers and listeners."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pluggy
import pytest
from prometheus_client import CollectorRegistry

from pubsubkit.api import Broker, open_broker, open_store
from pubsubkit.batch import BatchHandler
from pubsubkit.listener import Handler, Listener
from pubsubkit.plugin import get_plugin_manager
from pubsubkit.retry import RetryPolicy
from pubsubkit.store import Store
from pubsubkit.testing.helpers import DEFAULT_TIMEOUT, EventKit, HookRecorder, ServerControl, Sizes, unique_name
from pubsubkit.testing.plugin import SIZE_ENV

__all__ = ["FAST_RETRY", "CommonFixtures", "Listeners", "MessagingFixtures", "require"]

#: Retries without noticeable backoff, so that cases about failures stay quick.
FAST_RETRY = RetryPolicy(attempts=5, initial=0.005, multiplier=1.0, max_delay=0.005, jitter=0.0)


def require(broker: Broker, capability: str, why: str) -> None:
    """Skip the case, naming ``capability``, when the broker does not have it."""
    if not getattr(broker.capabilities, capability):
        pytest.skip(f"capability {capability}: {why}")


def as_coroutine(fn: Callable[[Any, Any], object]) -> Callable[[Any, Any], object]:
    """``fn`` as an ``async def`` handler: awaited by the listener, it runs ``fn`` in a thread (so that a case's
    handler that waits on an event does not hold up the event loop) and returns or raises what ``fn`` does."""

    async def handler(event: Any, msg: Any) -> object:
        return await asyncio.to_thread(fn, event, msg)

    handler.__name__ = getattr(fn, "__name__", type(fn).__name__)
    return handler


class Listeners:
    """Starts listeners with the suite's defaults and closes every one of them at the end of the test.

    With ``kind="async"`` every handler is given to the listener as an ``async def`` one (the async variants
    of the handler cases, ``test_async_*``).
    """

    def __init__(self, kind: str = "sync") -> None:
        self.started: list[Listener] = []
        self.kind = kind

    def start(
        self,
        broker: Broker,
        group: str,
        handlers: Sequence[tuple[type[Any] | str, Handler]],
        *,
        batches: Sequence[tuple[type[Any] | str, BatchHandler, int, float]] = (),
        **options: Any,
    ) -> Listener:
        """A running listener of ``group`` whose subscription exists: emit after this returns.

        :param batches: batch handlers, ``(event type, fn, max_size, max_wait)``.
        """
        options.setdefault("poll_interval", 0.05)
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("drain_timeout", 10.0)
        listener = broker.listener(group, **options)
        for event_type, fn in handlers:
            listener.add_handler(event_type, as_coroutine(fn) if self.kind == "async" else fn)
        for event_type, batch_fn, max_size, max_wait in batches:
            batch_fn = as_coroutine(batch_fn) if self.kind == "async" else batch_fn
            listener.add_batch_handler([event_type], batch_fn, max_size=max_size, max_wait=max_wait)
        self.started.append(listener)
        listener.start()
        if not listener.wait_ready(DEFAULT_TIMEOUT):
            pytest.fail(f"listener of group {group} did not join its group within {DEFAULT_TIMEOUT:.0f}s")
        return listener

    def close(self, listener: Listener) -> None:
        """Close ``listener`` and check that its loop really ended."""
        listener.close(timeout=DEFAULT_TIMEOUT)
        if not listener.stopped:
            pytest.fail(f"listener of group {listener.group} did not stop within {DEFAULT_TIMEOUT:.0f}s")

    def close_all(self) -> None:
        for listener in reversed(self.started):
            listener.close(timeout=DEFAULT_TIMEOUT)


class CommonFixtures:
    """Fixtures of both suites: the sizes of the cases and the names and event types of one test."""

    @pytest.fixture
    def sizes(self, request: pytest.FixtureRequest) -> Sizes:
        name = request.config.getoption("conformance_size", default=None) or os.environ.get(SIZE_ENV, "quick")
        return Sizes.for_name(str(name))

    @pytest.fixture
    def kit(self) -> EventKit:
        return EventKit()


class MessagingFixtures(CommonFixtures):
    """The fixtures a backend's test class may override; ``broker_url`` is the one it must."""

    @pytest.fixture
    def broker_url(self) -> str:
        """The URL of the broker under test; each test should get a fresh one (a file, a vhost...) or share."""
        pytest.fail("the test class must define a broker_url fixture returning the URL of the broker under test")

    @pytest.fixture
    def store_url(self) -> str:
        """The store of the inbox case; any store will do, so the default is an in-process one."""
        return f"memory://{unique_name('inbox')}"

    @pytest.fixture
    def store(self, store_url: str, pm: pluggy.PluginManager, kit: EventKit) -> Iterator[Store]:
        """The store of the inbox cases, opened on ``store_url``."""
        s = open_store(store_url, pm=pm, codec=kit.codec)
        yield s
        s.close()

    @pytest.fixture
    def server_control(self) -> ServerControl:
        """Override to return a :class:`~pubsubkit.testing.helpers.ServerControl` for the broker's server."""
        pytest.skip("needs a restartable server (capability restartable)")

    @pytest.fixture
    def publish_undecodable(self) -> Callable[[str, str | None], None] | None:
        """Override to return ``fn(name, key)`` that stores bytes under ``name`` no envelope can be parsed from."""
        return None

    @pytest.fixture
    def metrics_registry(self) -> CollectorRegistry:
        return CollectorRegistry()

    @pytest.fixture
    def recorder(self) -> HookRecorder:
        return HookRecorder()

    @pytest.fixture
    def pm(self, metrics_registry: CollectorRegistry, recorder: HookRecorder) -> pluggy.PluginManager:
        pm = get_plugin_manager(metrics_registry=metrics_registry)
        pm.register(recorder, name="conformance-recorder")
        return pm

    @pytest.fixture
    def open_brokers(self, broker_url: str, pm: pluggy.PluginManager, kit: EventKit) -> Iterator[Callable[[], Broker]]:
        """Opens further connections to the broker under test (another process would have its own)."""
        opened: list[Broker] = []

        def make() -> Broker:
            b = open_broker(broker_url, pm=pm, codec=kit.codec)
            opened.append(b)
            return b

        yield make
        for b in reversed(opened):
            b.close()

    @pytest.fixture
    def listeners(self, open_brokers: Callable[[], Broker]) -> Iterator[Listeners]:
        # depends on ``open_brokers`` so that the listeners are closed before any broker is
        pool = Listeners()
        yield pool
        pool.close_all()

    @pytest.fixture
    def broker(self, open_brokers: Callable[[], Broker]) -> Broker:
        return open_brokers()
