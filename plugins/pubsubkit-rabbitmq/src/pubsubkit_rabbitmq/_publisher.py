"""Publishing with pipelined publisher confirms, on one connection driven by an I/O thread of its own.

pika is not thread-safe, so every publishing thread hands its batch to the connection's I/O thread
(``add_callback_threadsafe``), which publishes the whole batch at once and then waits for the broker's
confirms by delivery tag; the calling thread wakes when the last one came. Batches of several threads share
the connection and the channel, so many confirms are in flight at a time. A message returned as unroutable
(``mandatory``) is logged, or fails its batch with :class:`Unroutable` under ``unroutable=fail``. When the
connection drops, the batches still waiting fail with ConnectionLost, and the next publish opens a new
connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import pika
import pika.exceptions

from pubsubkit.errors import Closed, ConnectionLost, PublishError, PubsubkitError
from pubsubkit.plugin import redact
from pubsubkit_rabbitmq._archive import archive_mismatch
from pubsubkit_rabbitmq._options import QueueMismatch, Settings, Unroutable

__all__ = ["Outgoing", "Publisher", "Unroutable"]

log = logging.getLogger("pubsubkit.rabbitmq")


class Outgoing(NamedTuple):
    """One message to publish."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties


class _Batch:
    """The messages of one publish call, waiting for their confirms."""

    def __init__(self, count: int) -> None:
        self.pending = count
        self.done = threading.Event()
        self.error: PubsubkitError | None = None

    def settle(self, error: PubsubkitError | None = None) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.pending -= 1
        if self.pending <= 0:
            self.done.set()

    def fail(self, error: PubsubkitError) -> None:
        if self.error is None:
            self.error = error
        self.done.set()


class _Link:
    """One connection, its channel in confirm mode and the I/O thread that drives them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = threading.Event()  # the channel is open and the exchanges exist
        self.over = threading.Event()  # set once the connection is gone (or never came)
        self.error = ""
        self.mismatch: QueueMismatch | None = None  # the archive exists with other arguments: not worth a retry
        self.conn: pika.SelectConnection | None = None
        self.channel: Any = None
        self.next_tag = 0
        self.pending: dict[int, tuple[_Batch, str | None]] = {}  # delivery tag -> batch, message id
        self.returned: set[int] = set()
        self.stopping = False  # closed by its publisher: close the connection as soon as it opens
        self.thread = threading.Thread(target=self._run, name="pubsubkit-rabbitmq-publisher", daemon=True)
        self.thread.start()

    # --- on the I/O thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.conn = pika.SelectConnection(
                self.settings.params,
                on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
            )
        except Exception as exc:  # any failure to start is a lost connection
            self._finish(f"cannot connect: {exc!r}")
            return
        try:
            self.conn.ioloop.start()
        except Exception as exc:
            self._finish(f"connection failed: {exc!r}")
        finally:
            self._finish("connection closed")
            with contextlib.suppress(Exception):
                self.conn.ioloop.close()

    def _finish(self, why: str) -> None:
        if not self.over.is_set():
            self.error = self.error or why
        lost = ConnectionLost(f"{redact(self.settings.url)}: {self.error or why}; publish not confirmed")
        for batch, _ in self.pending.values():
            batch.fail(lost)
        self.pending.clear()
        self.ready.clear()
        self.over.set()

    def _on_open(self, conn: Any) -> None:
        if self.stopping:
            self.close_now()
            return
        conn.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, conn: Any, exc: BaseException) -> None:
        self.error = f"cannot connect: {exc!r}"
        conn.ioloop.stop()

    def _on_closed(self, conn: Any, exc: BaseException) -> None:
        if not self.error:
            self.error = f"connection lost: {exc!r}"
        self._finish(self.error)
        conn.ioloop.stop()

    def _on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _frame: self._declare())

    def _declare(self) -> None:
        """The exchanges, then (``archive``) the archive bound for every name, then ready."""
        s = self.settings
        ch = self.channel

        def ready(_frame: Any = None) -> None:
            self.ready.set()

        def archive(_frame: Any) -> None:
            if not s.archive:
                ready()
                return
            ch.queue_declare(
                s.archive_queue,
                durable=True,
                arguments=s.archive_arguments(),
                callback=lambda _f: ch.queue_bind(s.archive_queue, s.exchange, routing_key="#", callback=ready),
            )

        ch.exchange_declare(
            s.dead_letter_exchange,
            exchange_type="direct",
            durable=True,
            callback=lambda _frame: ch.exchange_declare(
                s.exchange, exchange_type="topic", durable=True, callback=archive
            ),
        )

    def _on_channel_closed(self, channel: Any, exc: BaseException) -> None:
        self.error = f"channel closed: {exc!r}"
        refused = isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code == 406
        if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and refused and not self.ready.is_set():
            self.mismatch = archive_mismatch(self.settings, exc.reply_text)
        conn = self.conn
        if conn is not None and not (conn.is_closing or conn.is_closed):
            conn.close()

    def _on_return(self, channel: Any, method: Any, props: Any, body: bytes) -> None:
        # A return comes before the confirm of its message: mark the oldest pending message with its id.
        for tag, (_, message_id) in self.pending.items():
            if tag not in self.returned and message_id == props.message_id:
                self.returned.add(tag)
                return

    def _settle_one(self, tag: int, nack: bool) -> None:
        entry = self.pending.pop(tag, None)
        if entry is None:
            return
        batch, message_id = entry
        error: PubsubkitError | None = None
        if tag in self.returned:
            self.returned.discard(tag)
            what = (
                f"message {message_id} was returned by the broker: no queue is bound to exchange"
                f" {self.settings.exchange!r} for its name"
            )
            if self.settings.unroutable == "fail":
                error = Unroutable(f"{what} (start a listener first, or open with unroutable=warn)")
            else:  # an event nobody listens to yet is no error in publish/subscribe: say so, and go on
                log.warning("%s; nobody received it (unroutable=fail makes this an error)", what)
        elif nack:
            error = PublishError(f"the broker refused message {message_id} (nack)")
        batch.settle(error)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nack = isinstance(method, pika.spec.Basic.Nack)
        tag = method.delivery_tag
        if method.multiple:
            for t in [t for t in self.pending if t <= tag]:
                self._settle_one(t, nack)
        else:
            self._settle_one(tag, nack)

    def publish_now(self, batch: _Batch, messages: Sequence[Outgoing]) -> None:
        """Publish every message of ``batch`` (called on the I/O thread)."""
        channel = self.channel
        if channel is None or not channel.is_open:
            batch.fail(ConnectionLost(f"{redact(self.settings.url)}: {self.error or 'channel not open'}"))
            return
        mandatory = self.settings.mandatory
        try:
            for m in messages:
                self.next_tag += 1
                self.pending[self.next_tag] = (batch, m.properties.message_id)
                channel.basic_publish(m.exchange, m.routing_key, m.body, m.properties, mandatory=mandatory)
        except pika.exceptions.AMQPError as exc:
            batch.fail(ConnectionLost(f"{redact(self.settings.url)}: publishing failed: {exc!r}"))

    def close_now(self) -> None:
        """Close the connection (on the I/O thread); the I/O loop stops once it is closed."""
        self.stopping = True
        conn = self.conn
        if conn is None:
            return
        try:
            if conn.is_open:
                conn.close()
                return
        except pika.exceptions.AMQPError:
            pass
        if conn.is_closed:
            conn.ioloop.stop()


class Publisher:
    """Thread-safe publishing through one connection; reconnects on the next publish after a loss."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._closed = False

    def _connected(self) -> _Link:
        with self._lock:
            if self._closed:
                raise Closed(f"{redact(self.settings.url)} is closed")
            link = self._link
            if link is None or link.over.is_set():
                link = self._link = _Link(self.settings)
        deadline = float(self.settings.params.socket_timeout or 10.0) + 5.0
        waited = 0.0
        while not link.ready.is_set():
            if link.over.wait(0.01):
                if link.mismatch is not None:
                    raise link.mismatch
                raise ConnectionLost(f"{redact(self.settings.url)}: {link.error}")
            waited += 0.01
            if waited > deadline:
                self._drop(link)
                raise ConnectionLost(f"{redact(self.settings.url)}: no connection within {deadline:.0f}s")
        return link

    def _drop(self, link: _Link) -> None:
        link.stopping = True
        conn = link.conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.ioloop.add_callback_threadsafe(link.close_now)
        link.thread.join(10)

    def ensure(self) -> None:
        """Connect if not connected; ConnectionLost if the broker cannot be reached."""
        self._connected()

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish ``messages`` and return once the broker confirmed all of them."""
        if not messages:
            return
        link = self._connected()
        batch = _Batch(len(messages))
        conn = link.conn
        assert conn is not None
        try:
            conn.ioloop.add_callback_threadsafe(lambda: link.publish_now(batch, messages))
        except Exception as exc:  # the I/O loop is closing
            raise ConnectionLost(f"{redact(self.settings.url)}: connection closing: {exc!r}") from exc
        deadline = time.monotonic() + self.settings.confirm_timeout
        while not batch.done.wait(0.05):
            if link.over.is_set() and not batch.done.is_set():
                raise ConnectionLost(f"{redact(self.settings.url)}: {link.error}; publish not confirmed")
            if time.monotonic() > deadline:
                raise PublishError(
                    f"{redact(self.settings.url)}: {batch.pending} of {len(messages)} messages not confirmed"
                    f" within {self.settings.confirm_timeout:g}s"
                )
        if batch.error is not None:
            raise batch.error

    def close(self) -> None:
        with self._lock:
            self._closed = True
            link, self._link = self._link, None
        if link is not None:
            self._drop(link)
