"""Messaging case 24: plugin middleware runs around every handler call and every publish, on every backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pubsubkit.api import Broker, open_broker
from pubsubkit.envelope import Envelope
from pubsubkit.listener import Message
from pubsubkit.plugin import HandlerCall, PublishCall, get_plugin_manager, hookimpl
from pubsubkit.testing._base import Listeners, MessagingFixtures
from pubsubkit.testing.helpers import Collector, EventKit

__all__ = ["HandlerTimer", "HeaderStamper", "MiddlewareCases"]


class HandlerTimer:
    """A plugin timing every handler call of the listeners of ``group``, and marking the events they cause."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, int, float, bool]] = []  # handler, message id, attempt, seconds, ok
        self.chains_built = 0

    @hookimpl
    def pubsubkit_handler_middleware(self, group: str) -> Any:
        if group != self.group:
            return None
        self.chains_built += 1

        def wrap(call_next: HandlerCall) -> HandlerCall:
            def timed(handler: Any, event: Any, msg: Message) -> object:
                msg.reply_headers_extra["x-timed-by"] = "timer"
                start = time.perf_counter()
                ok = False
                try:
                    result = call_next(handler, event, msg)
                    ok = True
                    return result
                finally:
                    took = time.perf_counter() - start
                    with self._lock:
                        name = getattr(handler, "__name__", type(handler).__name__)
                        self.calls.append((name, msg.id, msg.attempt, took, ok))

            return timed

        return wrap


class HeaderStamper:
    """A plugin adding the header ``x-stamp`` to everything published, and noting in which order it ran."""

    def __init__(self, label: str, order: list[str]) -> None:
        self.label = label
        self.order = order

    @hookimpl
    def pubsubkit_publish_middleware(self, url: str) -> Any:
        def wrap(publish_next: PublishCall) -> PublishCall:
            def stamped(envelopes: Sequence[Envelope]) -> Sequence[Envelope]:
                self.order.append(self.label)
                stamp = envelopes[0].headers.get("x-stamp", "")
                return publish_next([e.with_headers(x_stamp=stamp + self.label) for e in envelopes])

            return stamped

        return wrap


class MiddlewareCases(MessagingFixtures):
    def test_24_middleware(self, broker_url: str, kit: EventKit, listeners: Listeners) -> None:
        """Handler middleware times every attempt (a retried one included) and adds headers to what the handler
        causes; publish middleware adds a header that the emitter returns and the consumer sees, the first
        plugin registered outermost. Both chains are built once per listener or emitter."""
        group = kit.name("g")
        order: list[str] = []
        timer = HandlerTimer(group)
        pm = get_plugin_manager(metrics_registry=CollectorRegistry())
        pm.register(HeaderStamper("a", order), name="stamp-a")
        pm.register(HeaderStamper("b", order), name="stamp-b")
        pm.register(timer, name="timer")
        broker: Broker = open_broker(broker_url, pm=pm, codec=kit.codec)
        try:
            ping = kit.event_type()
            replies: dict[str, dict[str, str]] = {}

            def fail_first(event: Any, msg: Message) -> None:
                replies[msg.id] = msg.reply_headers()
                if event.n == 0 and msg.attempt == 1:
                    raise RuntimeError("the first attempt at 0 fails")

            got = Collector(fail=fail_first)
            listeners.start(broker, group, [(ping, got)])
            emitter = broker.emitter()
            sent = [emitter.emit(ping(n=i), key=f"k{i}") for i in range(5)]
            got.wait_for(env.id for env in sent)
        finally:
            listeners.close_all()
            broker.close()

        assert [env.headers.get("x-stamp") for env in sent] == ["ab"] * 5, "emit returns the envelope as sent"
        assert order == ["a", "b"] * 5, "the first plugin registered is the outermost wrapper"
        for rec in got.snapshot():
            assert rec.envelope.headers.get("x-stamp") == "ab", "the consumer sees the header middleware added"
        assert timer.chains_built == 1
        calls = sorted(timer.calls, key=lambda c: (c[1], c[2]))
        expected = [("Collector", env.id, 1, env is not sent[0]) for env in sent] + [("Collector", sent[0].id, 2, True)]
        assert sorted((name, mid, attempt, ok) for name, mid, attempt, _, ok in calls) == sorted(expected)
        assert all(seconds >= 0 for *_, seconds, _ in calls)
        assert all(h.get("x-timed-by") == "timer" for h in replies.values()), "reply headers carry the middleware's"
        if len(replies) != len(sent):
            pytest.fail(f"replies of {len(replies)} of {len(sent)} messages seen")
