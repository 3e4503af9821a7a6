"""pubsubkit.testing's helpers for testing a service: message_for, redelivery_of, run_until_idle."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import pubsubkit
from pubsubkit.listener import Message
from pubsubkit.testing import EventKit, message_for, redelivery_of, run_until_idle


def test_message_for_is_what_a_listener_hands_a_handler() -> None:
    kit = EventKit()
    ping = kit.event_type()
    msg = message_for(ping(n=1), group="g", key="k", headers={"x-a": "1"}, codec=kit.codec)
    assert (msg.group, msg.attempt, msg.envelope.key, msg.envelope.headers["x-a"]) == ("g", 1, "k", "1")
    again = redelivery_of(msg)
    assert (again.id, again.attempt, again.inbox_id) == (msg.id, 2, msg.inbox_id)
    with pytest.raises(TypeError, match="key must be a str"):
        message_for(ping(n=1), key=1, codec=kit.codec)  # type: ignore[arg-type]


def test_run_until_idle_waits_for_what_handlers_cause_and_names_what_is_busy() -> None:
    kit = EventKit()
    ping, pong = kit.event_type("ping"), kit.event_type("pong")
    heard: list[int] = []
    release = threading.Event()
    with pubsubkit.open_broker(f"memory://{kit.name('bus')}", codec=kit.codec) as broker:
        emitter = broker.emitter()

        def reply(event: Any, msg: Message) -> None:
            emitter.emit(pong(n=event.n + 1))

        first = broker.listener(kit.name("first"), poll_interval=0.01)
        first.add_handler(ping, reply)
        second = broker.listener(kit.name("second"), poll_interval=0.01)
        second.add_handler(pong, lambda event, msg: heard.append(event.n))
        first.start()
        emitter.emit(ping(n=1))
        run_until_idle(broker, first, second)  # starts second, which was not running
        assert heard == [2]

        stuck = broker.listener(kit.name("stuck"), poll_interval=0.01)
        stuck.add_handler(ping, lambda event, msg: release.wait(10))
        emitter.emit(ping(n=5))
        with pytest.raises(TimeoutError, match=f"group {kit.name('stuck')}: [12] unsettled"):
            run_until_idle(broker, first, second, stuck, timeout=0.5)
        release.set()
        run_until_idle(broker, first, second, stuck)
        for listener in (first, second, stuck):
            listener.close(5)


def test_run_until_idle_needs_a_memory_broker(tmp_path: Path) -> None:
    with (
        pubsubkit.open_broker(f"sqlite:///{tmp_path}/bus.db") as broker,
        pytest.raises(pubsubkit.ConfigError, match="needs a memory:// broker"),
    ):
        run_until_idle(broker)
