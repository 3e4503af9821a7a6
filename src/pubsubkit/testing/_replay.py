"""Messaging cases 27 to 30: a group without history, moving a group back (to the start, to a time), and the
seam between the history a new group reads and what is published meanwhile."""

from __future__ import annotations

import collections
import threading
import time
from datetime import UTC, datetime
from typing import Any

from pubsubkit.api import Broker
from pubsubkit.envelope import new_id
from pubsubkit.errors import ConfigError
from pubsubkit.listener import Listener, Message
from pubsubkit.store import Store
from pubsubkit.testing._base import Listeners, MessagingFixtures, require
from pubsubkit.testing._delivery import emit_in_chunks
from pubsubkit.testing._failures import Effect
from pubsubkit.testing.helpers import DEFAULT_TIMEOUT, Collector, EventKit, Sizes

__all__ = ["ReplayCases"]


def _reset(broker: Broker, group: str, since: datetime | None = None) -> int:
    """Move stopped ``group`` back; a broker may take a moment to see that its last member left."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        try:
            return broker.transport.reset_group(group, since)
        except ConfigError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _ids(got: Collector) -> list[str]:
    return [c.id for c in got.snapshot()]


class ReplayCases(MessagingFixtures):
    def _consume_all(
        self, broker: Broker, listeners: Listeners, group: str, ping: type[Any], ids: list[str], **options: Any
    ) -> tuple[Listener, Collector]:
        got = Collector()
        listener = listeners.start(broker, group, [(ping, got)], **options)
        got.wait_for(ids)
        return listener, got

    def test_27_history_opt_out(self, broker: Broker, kit: EventKit, listeners: Listeners) -> None:
        """A new group with ``history=False`` gets only what is published after it joined; stopped and started
        again it still gets what was published while it was away."""
        require(broker, "replay", "without a log every new group starts from now")
        ping = kit.event_type()
        group = kit.name("g")
        emitter = broker.emitter()
        old = emit_in_chunks(emitter, [(ping(n=i), None) for i in range(5)])
        listener, got = self._consume_all(broker, listeners, group, ping, [], history=False)
        new = emit_in_chunks(emitter, [(ping(n=i), None) for i in range(5, 10)])
        got.wait_for(e.id for e in new)
        listeners.close(listener)
        assert not set(_ids(got)) & {e.id for e in old}, "a group without history got messages from before it"
        away = emit_in_chunks(emitter, [(ping(n=i), None) for i in range(10, 13)])
        listener, again = self._consume_all(broker, listeners, group, ping, [e.id for e in away], history=False)
        listeners.close(listener)
        assert not set(_ids(again)) & {e.id for e in old}

    def test_28_reset_to_earliest(self, broker: Broker, kit: EventKit, listeners: Listeners) -> None:
        """A group that handled everything, stopped and moved back with ``reset_group``, gets every message again."""
        require(broker, "replay", "the broker keeps no log to move a group back in")
        ping = kit.event_type()
        group = kit.name("g")
        envs = emit_in_chunks(broker.emitter(), [(ping(n=i), f"k{i % 3}") for i in range(20)])
        ids = [e.id for e in envs]
        listener, _ = self._consume_all(broker, listeners, group, ping, ids)
        listeners.close(listener)
        count = _reset(broker, group)
        assert count >= len(ids), f"reset_group said {count} messages, {len(ids)} were published"
        listener, again = self._consume_all(broker, listeners, group, ping, ids)
        listeners.close(listener)
        assert set(_ids(again)) == set(ids)

    def test_29_reset_to_time(self, broker: Broker, kit: EventKit, listeners: Listeners) -> None:
        """Moved back to a time, a group gets again what occurred at or after it, and nothing from before."""
        require(broker, "replay", "the broker keeps no log to move a group back in")
        ping = kit.event_type()
        group = kit.name("g")
        emitter = broker.emitter()
        before = emit_in_chunks(emitter, [(ping(n=i), None) for i in range(10)])
        time.sleep(0.3)
        since = datetime.now(UTC)
        time.sleep(0.3)
        after = emit_in_chunks(emitter, [(ping(n=i), None) for i in range(10, 20)])
        listener, _ = self._consume_all(broker, listeners, group, ping, [e.id for e in before + after])
        listeners.close(listener)
        count = _reset(broker, group, since)
        assert count == len(after), f"reset_group to a time said {count}, {len(after)} occurred after it"
        listener, again = self._consume_all(broker, listeners, group, ping, [e.id for e in after])
        time.sleep(0.5)  # anything from before would have come first
        listeners.close(listener)
        assert not set(_ids(again)) & {e.id for e in before}, "moved back to a time, it got messages from before"

    def test_30_seam(self, broker: Broker, kit: EventKit, listeners: Listeners, store: Store, sizes: Sizes) -> None:
        """While a new group reads the history, more is published: every message is handled, and with an inbox
        none has two effects (where history and new messages meet, a broker may deliver one twice)."""
        require(broker, "replay", "without a log there is no history to read")
        ping = kit.event_type()
        group = kit.name("g")
        emitter = broker.emitter()
        history = emit_in_chunks(emitter, [(ping(n=i), None) for i in range(sizes.seam_history)])
        effects = store.collection(kit.name("effects"), Effect, indexes=["message_id"])
        applied: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def apply(event: Any, msg: Message) -> None:
            with msg.unit_of_work() as uow:
                uow.insert(effects, Effect(new_id(), msg.id, event.n))
            with lock:
                applied[msg.id] += 1

        published: list[str] = []
        failed: list[BaseException] = []

        def publish() -> None:
            try:
                first, end = sizes.seam_history, sizes.seam_history + sizes.seam_meanwhile
                for i in range(first, end, 100):
                    chunk = [(ping(n=j), None) for j in range(i, min(i + 100, end))]
                    published.extend(e.id for e in emitter.emit_many(chunk))
            except BaseException as exc:  # reported below
                failed.append(exc)

        got = Collector(effect=apply)
        publisher = threading.Thread(target=publish)
        publisher.start()
        listeners.start(broker, group, [(ping, got)], store=store)
        publisher.join(DEFAULT_TIMEOUT * 4)
        assert not failed, f"publishing failed: {failed[0]!r}"
        every = [e.id for e in history] + published
        got.wait_for(every, timeout=DEFAULT_TIMEOUT * 4)
        listeners.close_all()
        missing = set(every) - set(applied)
        assert not missing, f"{len(missing)} of {len(every)} messages never had an effect"
        twice = {i: n for i, n in applied.items() if n > 1}
        assert not twice, f"{len(twice)} messages had more than one effect: {list(twice.items())[:5]}"
        counted = collections.Counter(e.message_id for e in effects.find())
        assert sum(counted.values()) == len(every)
        assert max(counted.values()) == 1
