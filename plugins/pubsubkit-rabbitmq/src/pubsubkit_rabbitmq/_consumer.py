"""A member of a consumer group: a blocking connection of its own, consuming the group's queue.

The listener runtime calls a consumer from one thread at a time, which is what pika's BlockingConnection
needs. A group that is new, or was moved back, first reads the archive up to its seam
(:mod:`~pubsubkit_rabbitmq._archive`), then its queue. The broker pushes up to ``prefetch`` messages ahead, or
the listener's ``max_in_flight`` if that is less, from the first :meth:`RabbitConsumer.receive` on, which hands
them out: a member holds no more than it can take, and the group's other members get the rest. After the
connection dropped, the next call connects again, declares the topology again and resumes consuming;
deliveries of the lost connection cannot be settled any more (the broker gives them back to the group by
itself), so settling them is skipped.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Collection, Sequence
from typing import Any

import attrs
import pika
import pika.exceptions

from pubsubkit.envelope import new_id
from pubsubkit.errors import Closed, ConfigError, ConnectionLost, PubsubkitError
from pubsubkit.plugin import redact
from pubsubkit.transport import Consumer, DeadLetter, Delivery
from pubsubkit_rabbitmq import _wire
from pubsubkit_rabbitmq._archive import CatchUp
from pubsubkit_rabbitmq._errors import DRIVER_ERRORS, connect, translate
from pubsubkit_rabbitmq._options import Settings
from pubsubkit_rabbitmq._publisher import Outgoing, Publisher
from pubsubkit_rabbitmq._topology import Bindings, declare_group, register_group

__all__ = ["RabbitConsumer"]

log = logging.getLogger("pubsubkit.rabbitmq")


@attrs.frozen
class Token:
    """What a delivery needs to be settled or dead-lettered: its connection, delivery tag and bytes."""

    generation: int
    tag: int
    routing_key: str
    properties: pika.BasicProperties
    body: bytes
    redelivered: bool = False
    offset: int | None = None  # in the archive, for a message read from it


class RabbitConsumer(Consumer):
    """One member of a consumer group on the group's queue."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        group: str,
        names: Collection[str] | None,
        *,
        history: bool = True,
    ) -> None:
        self.publisher = publisher
        self.history = history
        self.window = settings.prefetch
        self._catch: CatchUp | None = None
        self._archive_ch: Any = None  # the channel reading the archive, while catching up
        self._bindings: Bindings | None = None
        self._rewind = False
        self._waiting = False  # another member reads the archive for the group
        self._consuming = False  # whether this connection's consumer was started (at the first receive)
        self._registered = False
        self._checked = 0.0
        self.settings = settings
        self.group = group
        self.names = None if names is None else frozenset(names)
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._generation = 0
        self._buffer: collections.deque[Token] = collections.deque()
        self._outstanding: collections.deque[int] = collections.deque()  # handed out, not settled, in order
        self._closed = False
        self._connect()

    # --- connection ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        conn = connect(self.settings)
        try:
            channel = conn.channel()
            catch = CatchUp.begin(conn, self.settings, self.group, self.history)
            bindings = declare_group(channel, self.settings, self.group, self.names)
            if not self._registered:
                register_group(channel, self.settings, self.group)
                self._registered = True
            self._generation += 1
            self._conn, self._channel, self._bindings = conn, channel, bindings
            self._start(catch)
        except (*DRIVER_ERRORS, ConfigError) as exc:
            self._conn = self._channel = self._catch = None
            with contextlib.suppress(*DRIVER_ERRORS):
                if conn.is_open:
                    conn.close()
            if isinstance(exc, ConfigError):
                raise
            raise translate(self.settings, exc, f"joining group {self.group}") from exc

    def set_window(self, max_in_flight: int) -> None:
        """Take no more than the listener's ``max_in_flight`` ahead (``prefetch`` is the most)."""
        self.window = min(self.settings.prefetch, max_in_flight)

    def _start(self, catch: CatchUp | bool) -> None:
        """Get ready to consume the group's queue, or first read the archive, or wait while another member reads
        it; :meth:`_consume` starts the consumer."""
        self._waiting = catch is True
        self._catch = catch if isinstance(catch, CatchUp) else None
        self._checked = time.monotonic()
        self._consuming = False
        if self._catch is not None:
            self._catch.mark_seam()

    def _consume(self) -> None:
        """Start consuming, once per connection: the archive first when catching up, else the group's queue.
        Not before the first receive, so that :meth:`set_window` decides how many the broker sends ahead."""
        if self._consuming or self._waiting:
            return
        self._consuming = True
        if self._catch is not None:
            self._consume_archive(self._catch)
        else:
            self._consume_queues()

    def _consume_queues(self) -> None:
        generation = self._generation

        def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
            self._buffer.append(
                Token(generation, method.delivery_tag, method.routing_key, props, body, bool(method.redelivered))
            )

        assert self._bindings is not None
        self._channel.basic_qos(prefetch_count=self.window)  # applies to the consumers started after it
        for queue in self._bindings.queues:  # one channel: its delivery tags count across the queues
            self._channel.basic_consume(queue, on_message_callback=on_message, auto_ack=False)

    def _consume_archive(self, catch: CatchUp) -> None:
        generation = self._generation

        def on_archive(ch: Any, method: Any, props: Any, body: bytes) -> None:
            offset = (props.headers or {}).get(_wire.STREAM_OFFSET)
            if not isinstance(offset, int):
                offset = -1  # not from a stream: cannot happen, and is skipped
            if self._catch is not catch or (catch.seam_at is not None and offset >= catch.seam_at):
                return  # past the seam (in the group's queue): not acknowledged, so the stream soon stops
            if offset < 0 or not catch.received(offset, props):
                ch.basic_ack(method.delivery_tag)  # a seam marker: nothing to hand out
                return
            self._buffer.append(
                Token(generation, method.delivery_tag, method.routing_key, props, body, False, offset=offset)
            )

        log.info("rabbitmq group %s: reading the archive from %s", self.group, catch.start_offset())
        # A channel of its own: a stream refuses nacks (closing the connection), and this channel is closed, not
        # cancelled, at the switch (pika nacks what a cancelled consumer had not dispatched yet).
        assert self._conn is not None
        ch = self._conn.channel()
        ch.basic_qos(prefetch_count=self.window)
        self._archive_ch = ch
        ch.basic_consume(
            self.settings.archive_queue,
            on_message_callback=on_archive,
            auto_ack=False,
            arguments={"x-stream-offset": catch.start_offset()},
        )

    def _catch_up(self) -> None:
        """Switch from the archive to the queue past the seam; end the catch-up once all of it is settled."""
        if self._waiting and time.monotonic() - self._checked >= 0.5:
            self._checked = time.monotonic()
            if not CatchUp.held(self._conn, self.settings, self.group):  # done, or its member went away
                self._start(CatchUp.begin(self._conn, self.settings, self.group, self.history))
                self._consume()
        catch = self._catch
        if catch is None:
            return
        if self._rewind:  # released archive messages: read again from the first of them, on a new connection
            self._rewind = False
            catch.close()
            self._drop()
            return
        if not catch.switched and catch.past_seam():
            self._consume_queues()  # the archive's channel stays open, idle: see _quiet_archive
            catch.switched = True
            catch.save(now=True)
            log.info("rabbitmq group %s: read the archive up to its seam; now on its queue", self.group)
        if catch.finish():
            self._catch = None
        else:
            catch.save()

    def _quiet_archive(self) -> None:
        """Before the connection closes: dispatch what the archive's consumer holds (it is dropped, being past
        the seam or handed out again later). BlockingChannel.close() would reject it, and a stream answers a
        reject by closing the connection (NOT_IMPLEMENTED). Past the seam nothing is acknowledged, so the stream
        stops sending once ``prefetch`` are unacknowledged and no more arrive while the connection closes."""
        if self._archive_ch is not None and self._conn is not None and self._conn.is_open:
            with contextlib.suppress(*DRIVER_ERRORS):
                self._conn.process_data_events(time_limit=0)

    def _drop(self) -> None:
        """Forget the connection (after an error); what it delivered comes back to the group by itself."""
        self._quiet_archive()
        conn, self._conn, self._channel, self._archive_ch = self._conn, None, None, None
        self._catch = None  # its position stays in the catch-up queue, for the next connection
        self._buffer.clear()
        self._outstanding.clear()
        if conn is not None:
            with contextlib.suppress(*DRIVER_ERRORS):
                if conn.is_open:
                    conn.close()

    def _lost(self, exc: BaseException, what: str) -> ConnectionLost:
        self._drop()
        return ConnectionLost(f"{redact(self.settings.url)}: {what} (group {self.group}): {exc!r}")

    # --- Consumer -----------------------------------------------------------------------------------

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._closed:
            raise Closed(f"consumer of group {self.group} is closed")
        if self._conn is None:
            self._connect()
        conn = self._conn
        assert conn is not None
        deadline = time.monotonic() + timeout
        try:
            self._consume()
            conn.process_data_events(time_limit=0)
            while not self._buffer:
                self._catch_up()
                if self._conn is None:
                    return []
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                catching = self._catch is not None or self._waiting
                conn.process_data_events(time_limit=min(remaining, 0.25) if catching else remaining)
            self._catch_up()
        except DRIVER_ERRORS as exc:
            raise self._lost(exc, "receiving") from exc
        if self._conn is None:
            return []
        out: list[Delivery] = []
        while self._buffer and len(out) < max_messages:
            token = self._buffer.popleft()
            if token.offset is None:  # a tag of the queue channel (the archive's are acknowledged one by one)
                self._outstanding.append(token.tag)
            out.append(self._delivery(token))
        return out

    def _delivery(self, token: Token) -> Delivery:
        headers = token.properties.headers or {}
        count = headers.get("x-delivery-count")
        # A quorum queue counts the earlier deliveries; a classic queue only says "delivered before".
        counted = isinstance(count, int) and not isinstance(count, bool)
        attempt = count + 1 if isinstance(count, int) and counted else (2 if token.redelivered else 1)
        try:
            env = _wire.envelope_of(token.routing_key, token.properties, token.body, self.settings.missing_id)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            return Delivery(None, attempt=attempt, token=token, raw=token.body, error=f"{type(exc).__name__}: {exc}")
        return Delivery(env, attempt=attempt, token=token)

    def _current(self, deliveries: Sequence[Delivery], *, settled: bool = True) -> list[int]:
        """The delivery tags on the queue channel of ``deliveries`` of this connection; those read from the
        archive are settled here: acknowledged on its channel (a stream keeps them; the ack only lets it send
        more) and, unless released, marked done in the catch-up."""
        tokens = [d.token for d in deliveries if isinstance(d.token, Token) and d.token.generation == self._generation]
        catch = self._catch
        for t in tokens:
            if t.offset is None or catch is None:
                continue
            if settled:
                catch.settled(t.offset)
            else:
                self._rewind = True  # read again, from the first not settled, on the next receive
            if self._archive_ch is not None:
                try:
                    self._archive_ch.basic_ack(t.tag)
                except DRIVER_ERRORS as exc:
                    raise self._lost(exc, "settling") from exc
        return [t.tag for t in tokens if t.offset is None]

    def _settle(self, tags: Sequence[int], requeue: bool | None) -> None:
        """Ack (``requeue`` None) or nack ``tags``; the oldest unsettled ones with one ``multiple`` frame."""
        if not tags or self._channel is None:
            return
        todo = set(tags)
        outstanding = self._outstanding
        last = None
        while outstanding and outstanding[0] in todo:
            last = outstanding.popleft()
            todo.discard(last)
        if todo:
            self._outstanding = collections.deque(t for t in outstanding if t not in todo)
        try:
            if last is not None:
                self._send(last, requeue, multiple=True)
            for tag in sorted(todo):
                self._send(tag, requeue, multiple=False)
        except DRIVER_ERRORS as exc:
            raise self._lost(exc, "settling") from exc

    def _send(self, tag: int, requeue: bool | None, multiple: bool) -> None:
        if requeue is None:
            self._channel.basic_ack(tag, multiple=multiple)
        else:
            self._channel.basic_nack(tag, multiple=multiple, requeue=requeue)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(self._current(deliveries), None)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(self._current(deliveries, settled=False), True)

    def dead_letter(self, delivery: Delivery, letter: DeadLetter) -> None:
        token = delivery.token
        if not isinstance(token, Token) or token.generation != self._generation or self._channel is None:
            return  # delivered on a lost connection: it comes back to the group, and is handled again
        letter_id = letter.id or f"{self.group}/{new_id()}"
        props = token.properties
        headers = dict(props.headers or {})
        headers.pop(_wire.STREAM_OFFSET, None)
        headers.update(_wire.dead_letter_headers(letter, letter_id, delivery.envelope is None))
        message_id = props.message_id
        if delivery.envelope is not None:
            # A message of another client keeps the id and name it was handled with, for a replay.
            message_id = message_id or delivery.envelope.id
            headers.setdefault(_wire.EVENT_NAME, delivery.envelope.name)
        out = pika.BasicProperties(
            content_type=props.content_type,
            content_encoding=props.content_encoding,
            delivery_mode=_wire.PERSISTENT,
            message_id=message_id,
            timestamp=props.timestamp,
            correlation_id=props.correlation_id,
            headers=headers,
        )
        # Stored in the dead-letter queue (confirmed) before the original is acknowledged: never lost.
        try:
            self.publisher.publish([Outgoing(self.settings.dead_letter_exchange, self.group, token.body, out)])
        except PubsubkitError as exc:
            raise ConnectionLost(f"dead-lettering a message of group {self.group}: {exc}") from exc
        self._settle(self._current([delivery]), None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._catch is not None:
            self._catch.close()  # where it is in the archive, for the next member
        self._drop()  # closing the channel gives every unacknowledged message back to the queue
