"""The RabbitMQ transport: publishes through a :class:`~pubsubkit_rabbitmq._publisher.Publisher` and opens
:class:`~pubsubkit_rabbitmq._consumer.RabbitConsumer`\\ s; lists and replays the dead letters of a group."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
import pika
import pika.exceptions

from pubsubkit.envelope import Envelope
from pubsubkit.errors import Closed, NotFound
from pubsubkit.plugin import redact
from pubsubkit.transport import Channel, Consumer, DeadLetter, Transport
from pubsubkit_rabbitmq import _archive, _options, _wire
from pubsubkit_rabbitmq._consumer import RabbitConsumer
from pubsubkit_rabbitmq._errors import DRIVER_ERRORS, connect, translate
from pubsubkit_rabbitmq._options import CAPABILITIES
from pubsubkit_rabbitmq._publisher import Outgoing, Publisher
from pubsubkit_rabbitmq._topology import registered_groups

__all__ = ["CAPABILITIES", "RabbitTransport"]


R = TypeVar("R")


class RabbitTransport(Transport):
    """``amqp://`` and ``amqps://``: a durable topic exchange, a queue per consumer group."""

    capabilities = CAPABILITIES

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.settings = _options.parse(url, options)
        if self.settings.single_active:  # one member at a time consumes: the listener keeps per-key order
            self.capabilities = attrs.evolve(self.capabilities, ordered=True)
        if not self.settings.archive:  # no history: a group gets what is published after it was declared
            self.capabilities = attrs.evolve(self.capabilities, replay=False)
        self.publisher = Publisher(self.settings)
        self._closed = False
        self._groups: set[str] = set()
        self._lock = threading.Lock()

    def _check_open(self) -> None:
        if self._closed:
            raise Closed(f"{redact(self.url)} is closed")

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self._check_open()
        exchange = self.settings.exchange
        self.publisher.publish(
            [Outgoing(exchange, env.name, env.payload, _wire.properties_of(env)) for env in envelopes]
        )

    def consumer(self, group: str, names: Collection[str] | None, *, history: bool = True) -> Consumer:
        self._check_open()
        with self._lock:
            self._groups.add(group)
        return RabbitConsumer(self.settings, self.publisher, group, names, history=history)

    def channel(self, name: str) -> Channel:
        """The event's name as the routing key of the durable topic exchange; the body is the payload."""
        exchange = {"name": self.settings.exchange, "type": "topic", "durable": True, "autoDelete": False}
        return Channel(
            address=name,
            bindings={"amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": "0.3.0"}},
            headers={
                _wire.EVENT_NAME: "the event's name",
                _wire.KEY: "the ordering key",
                _wire.OCCURRED_AT: "when the event occurred (ISO 8601)",
            },
        )

    def ping(self) -> None:
        self._check_open()
        self.publisher.ensure()

    def close(self) -> None:
        self._closed = True
        self.publisher.close()

    # --- replay -------------------------------------------------------------------------------------

    def _on_connection(self, fn: Callable[[Any], R], what: str) -> R:
        """Run ``fn(connection)`` on a short-lived connection of its own."""
        self._check_open()
        conn = connect(self.settings)
        try:
            return fn(conn)
        except DRIVER_ERRORS as exc:
            raise translate(self.settings, exc, what) from exc
        finally:
            with contextlib.suppress(*DRIVER_ERRORS):
                if conn.is_open:
                    conn.close()

    def lag(self, group: str) -> dict[str, int] | None:
        """The messages ready in ``group``'s queue (not those its members hold), as ``{queue: n}``; ``None``
        while the queue does not exist (no member has joined yet)."""
        queue = self.settings.queue(group)

        def depth(conn: Any) -> dict[str, int] | None:
            try:
                ok = conn.channel().queue_declare(queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return None
                raise
            return {queue: int(ok.method.message_count)}

        return self._on_connection(depth, "reading the lag")

    def reset_group(self, group: str, since: datetime | None = None) -> int:
        """Make stopped ``group`` read the archive again from its first message (``since`` None) or the first
        that occurred at or after ``since``, then its queue (whose messages are all in the archive, so it is
        emptied); returns how many it will read from the archive. Refused while the group has members."""
        return self._on_connection(lambda conn: _archive.reset(conn, self.settings, group, since), "moving back")

    def forget_group(self, group: str) -> bool:
        """Delete ``group``'s queue and its catch-up (its dead letters stay); refused while it has members."""
        return self._on_connection(lambda conn: _archive.forget(conn, self.settings, group), "removing a group")

    # --- dead letters -------------------------------------------------------------------------------

    def _with_channel(self, fn: Callable[[Any], R]) -> R:
        """Run ``fn(channel)`` on a short-lived connection; unacknowledged gets go back when it closes."""
        self._check_open()
        conn = connect(self.settings)
        try:
            return fn(conn.channel())
        except DRIVER_ERRORS as exc:
            raise translate(self.settings, exc, "reading dead letters") from exc
        finally:
            with contextlib.suppress(*DRIVER_ERRORS):
                if conn.is_open:
                    conn.close()

    def _letters(self, channel: Any, group: str, limit: int) -> list[tuple[int, Any, bytes, DeadLetter]]:
        """Up to ``limit`` messages of ``group``'s dead-letter queue, left unacknowledged on ``channel``."""
        out: list[tuple[int, Any, bytes, DeadLetter]] = []
        queue = self.settings.dead_letter_queue(group)
        try:
            channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return out
            raise
        while len(out) < limit:
            method, props, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            out.append(
                (method.delivery_tag, props, body, _wire.letter_of(group, props, body, self.settings.missing_id))
            )
        return out

    def dead_letters(self, group: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The dead letters of ``group`` (oldest first); without a group, of every group that joined on this
        exchange (each consumer notes its group in ``<exchange>.groups``, since AMQP cannot list queues)."""
        if group is not None:
            groups = [group]
        else:
            noted = self._with_channel(lambda ch: registered_groups(ch, self.settings))
            with self._lock:
                groups = sorted(set(noted) | self._groups)
        letters: list[DeadLetter] = []
        for g in groups:
            if len(letters) >= limit:
                break
            found = self._with_channel(lambda ch, g=g: self._letters(ch, g, limit - len(letters)))  # type: ignore[misc]
            letters.extend(x[3] for x in found)
        return letters

    def replay_dead_letter(self, letter_id: str) -> None:
        """Publish the original message again (every group bound for its name gets it) and drop the letter."""
        group, sep, _ = letter_id.rpartition("/")
        if not sep or not group:
            raise NotFound(f"dead letter {letter_id!r} does not exist (ids look like <group>/<id>)")

        def replay(channel: Any) -> None:
            while True:  # the letters read stay unacknowledged on this channel, so each read gets the next ones
                batch = self._letters(channel, group, 500)
                if not batch:
                    raise NotFound(f"dead letter {letter_id} does not exist in group {group}")
                for tag, props, body, letter in batch:
                    if letter.id != letter_id:
                        continue
                    if letter.envelope is None:
                        raise NotFound(f"dead letter {letter_id} has no decodable message to replay")
                    original = _wire.strip_dead_letter_headers(props)
                    self.publisher.publish([Outgoing(self.settings.exchange, letter.envelope.name, body, original)])
                    channel.basic_ack(tag)
                    return

        self._with_channel(replay)
