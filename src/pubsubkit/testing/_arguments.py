"""Messaging case 25: a wrong argument is refused in the call that gives it, the same way on every backend, and a
mistake no retry cures inside a handler is dead-lettered at once."""

from __future__ import annotations

from typing import Any

import pytest

from pubsubkit.api import Broker
from pubsubkit.errors import Closed, ConfigError
from pubsubkit.listener import Message
from pubsubkit.testing._base import Listeners, MessagingFixtures
from pubsubkit.testing._failures import wait_letters
from pubsubkit.testing.helpers import Collector, EventKit, HookRecorder

__all__ = ["ArgumentCases"]


class ArgumentCases(MessagingFixtures):
    def test_25_argument_checks(
        self, broker: Broker, kit: EventKit, listeners: Listeners, recorder: HookRecorder
    ) -> None:
        """A key that is not a str, headers that are not str to str, a store that is a URL, a handler that cannot
        take (event, msg), an event type that is not one, and starting a listener twice or after close() all
        raise in the caller; a ConfigError raised by a handler (here
        msg.unit_of_work() without a store) is dead-lettered after one attempt."""
        ping = kit.event_type()
        emitter = broker.emitter()
        with pytest.raises(TypeError, match=r"key must be a str or None, not int \(42\): pass key=str"):
            emitter.emit(ping(n=1), key=42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="headers must map str to str"):
            emitter.emit(ping(n=1), headers={"x-n": 1})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match=r"key must be a str"):
            emitter.emit_many([(ping(n=1), b"k")])
        with pytest.raises(TypeError, match=r"store= takes a pubsubkit Store or None, not str \(open it with"):
            broker.listener(kit.name("g"), store="memory://somewhere")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="poll_interval=0: a number of seconds above 0"):
            broker.listener(kit.name("g"), poll_interval=0)
        with pytest.raises(ConfigError, match="emitter option retry_for=-1: a number of seconds 0 or more"):
            broker.emitter(retry_for=-1)
        listener = broker.listener(kit.name("g"))

        def one_argument(event: Any) -> None: ...

        with pytest.raises(TypeError, match=r"handler one_argument cannot be called as fn\(event, msg\)"):
            listener.add_handler(ping, one_argument)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="a handler must be callable"):
            listener.add_handler(ping, "project")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="is not a registered event type"):
            listener.add_handler(dict, Collector())
        with pytest.raises(TypeError, match="is not an event type"):
            listener.add_handler(42, Collector())  # type: ignore[arg-type]

        group = kit.name("fatal")
        calls: list[int] = []

        def needs_a_store(event: Any, msg: Message) -> None:
            calls.append(msg.attempt)
            if event.n == 0:
                with msg.unit_of_work():  # no store= on this listener: ConfigError, no retry cures it
                    pass

        got = Collector(fail=needs_a_store)
        running = listeners.start(broker, group, [(ping, got)])
        with pytest.raises(ConfigError, match="already running"):
            running.start()
        first, second = emitter.emit(ping(n=0), key="k"), emitter.emit(ping(n=1), key="k")
        got.wait_for([second.id])
        [letter] = wait_letters(recorder, group, 1)
        listeners.close(running)
        with pytest.raises(Closed, match="is closed: make a new one"):
            running.start()
        assert (letter.reason, letter.attempts) == ("fatal", 1)
        assert letter.envelope is not None
        assert letter.envelope.id == first.id
        assert "Message.unit_of_work() needs a listener created with store=" in letter.error
        assert calls == [1, 1], "the ConfigError was retried"
