"""The archive: a stream queue that keeps every message, read by a group that is new or was moved back.

With ``archive=true`` (the default) the publisher and every consumer declare ``<exchange>.archive``, a RabbitMQ
stream queue bound to the exchange for every name and kept for ``archive_max_age`` (and ``archive_max_bytes``).
A group *catches up* when its own queue did not exist yet (a new group) or after
:meth:`~pubsubkit_rabbitmq._transport.RabbitTransport.reset_group`:

1. the queue ``<exchange>.<group>.catchup`` is declared; it holds where the group is in the archive, and exists
   only while the group catches up, so a member that crashes half-way resumes there;
2. the group's own queue is declared and bound, so from here on it gets every new message;
3. a *seam* marker is published into the archive: every message after it is also in the group's queue;
4. the group reads the archive (``x-stream-offset``) up to the seam, then consumes its queue.

What was published between steps 2 and 3 (a round trip to the broker) arrives twice, once from each; message ids
are stable, so an inbox (``store=`` on the listener) gives each one effect. A message without an id (another
client's) gets a new one per delivery under ``missing_id=fresh``; ``missing_id=hash`` makes those stable too.
A group that takes names from a shared queue (``share.<group>``) competes with another application for them and
does not catch up: the history would hand them to both. A position is written after the messages before it were
settled; a crash makes the group read again from the last one written (at least once, as everywhere).
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from typing import Any

import attrs
import pika
import pika.exceptions

from pubsubkit.envelope import new_id
from pubsubkit.errors import ConfigError, NotFound
from pubsubkit_rabbitmq import _wire
from pubsubkit_rabbitmq._options import QueueMismatch, Settings

__all__ = ["SEAM", "CatchUp", "archive_mismatch", "declare_archive", "forget", "reset"]

#: Header of a seam marker in the archive; its value is the group the marker is for.
SEAM = "x-pubsubkit-seam"
#: A position is written at most this often, and at the switch and on close.
_WRITE_EVERY = 1.0


def archive_mismatch(settings: Settings, reply_text: str | None) -> QueueMismatch:
    """The broker refused the archive's arguments: name the options that decide them."""
    return QueueMismatch(
        f"the archive {settings.archive_queue!r} exists with other arguments ({reply_text}): set archive_max_age"
        " and archive_max_bytes as it was declared with, or give another exchange; archive=false keeps no history"
    )


def declare_archive(channel: Any, settings: Settings) -> None:
    """Declare the archive and bind it for every name (``archive=true``)."""
    if not settings.archive:
        return
    try:
        channel.queue_declare(settings.archive_queue, durable=True, arguments=settings.archive_arguments())
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406:
            raise archive_mismatch(settings, exc.reply_text) from None
        raise
    channel.queue_bind(settings.archive_queue, settings.exchange, routing_key="#")


def _exists(conn: Any, queue: str) -> Any:
    """The passive declare-ok of ``queue`` (message and consumer counts), or None if it does not exist."""
    probe = conn.channel()
    try:
        ok = probe.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    with contextlib.suppress(Exception):
        probe.close()
    return ok.method


def _lock(conn: Any, queue: str) -> bool:
    """Take the catch-up of a group for this connection (an exclusive queue, gone with the connection): one
    member reads the archive at a time, so that two members joining a new group together do not both."""
    probe = conn.channel()
    try:
        probe.queue_declare(f"{queue}.lock", exclusive=True, auto_delete=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 405:  # RESOURCE_LOCKED: another connection holds it
            return False
        raise
    return True


@attrs.frozen
class Position:
    """Where a catch-up is: the next archive offset to read (None: the first kept), and its seam's id."""

    offset: int | None = None
    seam: str | None = None

    def encode(self) -> bytes:
        return json.dumps({"offset": self.offset, "seam": self.seam}).encode()

    @classmethod
    def newest(cls, bodies: list[bytes]) -> Position:
        """The furthest of the positions written (an older one may be left over by a crash)."""
        found = [json.loads(b) for b in bodies]
        seams = [f["seam"] for f in found if f.get("seam")]
        offsets = [f["offset"] for f in found if isinstance(f.get("offset"), int)]
        return cls(max(offsets) if offsets else None, seams[-1] if seams else None)


class CatchUp:
    """One member's reading of the archive for its group, with the position kept in the catch-up queue.

    It uses a channel of its own (in confirm mode) for the position and the seam, so that the consumer's
    acknowledgements, some of them ``multiple``, never touch the position messages it holds.
    """

    def __init__(self, conn: Any, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = group
        self.queue = settings.catch_up_queue(group)
        self.ch = conn.channel()
        self.ch.confirm_delivery()
        self.ch.queue_declare(self.queue, durable=True, arguments={"x-queue-type": "classic"})
        held: list[int] = []
        bodies: list[bytes] = []
        while True:
            method, _props, body = self.ch.basic_get(self.queue, auto_ack=False)
            if method is None:
                break
            held.append(method.delivery_tag)
            bodies.append(body)
        self._held = held  # position messages read and not acknowledged: dropped once a newer one is written
        self.position = Position.newest(bodies)
        self.pending: set[int] = set()  # archive offsets received and not settled
        self.highest: int | None = None
        self.seam_at: int | None = None  # the offset of the seam, once read
        self.switched = False
        self._written = time.monotonic()
        if not bodies:
            self._write(self.position)

    @classmethod
    def begin(cls, conn: Any, settings: Settings, group: str, history: bool) -> CatchUp | bool:
        """The catch-up ``group`` has to do before it consumes its queue (call before declaring it): a
        :class:`CatchUp`, False when there is none, True when another member does it (wait for the lock)."""
        if not settings.archive or settings.group(group).share is not None:
            return False
        if _exists(conn, settings.catch_up_queue(group)) is None and (
            not history or _exists(conn, settings.queue(group)) is not None
        ):
            return False  # an existing group, or one that wants only what comes from now on
        if not _lock(conn, settings.catch_up_queue(group)):
            # Another member reads the archive: this one waits, so that the group's queue is not handled
            # before the history (and it takes over if that member goes away).
            return True
        return cls(conn, settings, group)

    @staticmethod
    def held(conn: Any, settings: Settings, group: str) -> bool:
        """Whether a member still holds ``group``'s catch-up."""
        return _locked(conn, settings.catch_up_queue(group))

    # --- the position -----------------------------------------------------------------------------

    def _write(self, position: Position) -> None:
        """Store ``position`` (confirmed), then drop the ones it replaces."""
        self.ch.basic_publish(
            "", self.queue, position.encode(), pika.BasicProperties(delivery_mode=_wire.PERSISTENT), mandatory=True
        )
        for tag in self._held:
            self.ch.basic_ack(tag)
        self._held = []
        # the one just written is read back unacknowledged, so that the next write can drop it
        method, _props, _body = self.ch.basic_get(self.queue, auto_ack=False)
        if method is not None:
            self._held.append(method.delivery_tag)
        self.position = position
        self._written = time.monotonic()

    def current(self) -> Position:
        """The offset before which every archive message received was settled."""
        if self.pending:
            offset: int | None = min(self.pending)
        elif self.highest is not None:
            offset = self.highest + 1
        else:
            offset = self.position.offset
        if offset is not None and self.seam_at is not None:
            offset = min(offset, self.seam_at)  # never past the seam: a member that resumes must meet it
        return Position(offset, self.position.seam)

    def save(self, *, now: bool = False) -> None:
        """Write the position if it moved (at most every second unless ``now``)."""
        if not now and time.monotonic() - self._written < _WRITE_EVERY:
            return
        position = self.current()
        if position != self.position:
            self._write(position)

    def mark_seam(self) -> None:
        """Publish the seam into the archive (after the group's queue is bound), unless one was already."""
        if self.position.seam is not None:
            return
        seam = new_id()
        props = pika.BasicProperties(message_id=seam, headers={SEAM: self.group}, delivery_mode=_wire.PERSISTENT)
        self.ch.basic_publish("", self.settings.archive_queue, b"", props, mandatory=True)
        self._write(Position(self.position.offset, seam))

    # --- reading ----------------------------------------------------------------------------------

    def start_offset(self) -> Any:
        return "first" if self.position.offset is None else self.position.offset

    def received(self, offset: int, props: Any) -> bool:
        """Note an archive message; False for one not to hand out: a seam marker, or one past the seam (it is in
        the group's queue)."""
        if self.highest is None or offset > self.highest:
            self.highest = offset
        if self.seam_at is not None and offset >= self.seam_at:
            return False
        headers = props.headers or {}
        if SEAM in headers:
            if props.message_id == self.position.seam:
                self.seam_at = offset
            return False
        self.pending.add(offset)
        return True

    def settled(self, offset: int) -> None:
        self.pending.discard(offset)

    def past_seam(self) -> bool:
        """Whether the archive was read up to the seam, so that the group can switch to its queue."""
        return self.seam_at is not None

    def finish(self) -> bool:
        """Once switched and everything read from the archive is settled: drop the catch-up queue."""
        if not self.switched or self.pending:
            return False
        self.ch.queue_delete(self.queue)
        self.ch.queue_delete(self.queue + ".lock")
        with contextlib.suppress(Exception):
            self.ch.close()
        return True

    def close(self) -> None:
        """Keep where the group is (best effort: at worst it reads again from the last position written)."""
        with contextlib.suppress(Exception):
            self.save(now=True)
        with contextlib.suppress(Exception):
            self.ch.close()


def _members(conn: Any, settings: Settings, group: str) -> Any:
    found = _exists(conn, settings.queue(group))
    if found is None:
        raise NotFound(
            f"no consumer group {group} on exchange {settings.exchange} (its queue {settings.queue(group)}"
            " does not exist)"
        )
    if found.consumer_count or _locked(conn, settings.catch_up_queue(group)):
        raise ConfigError(f"rabbitmq group {group} has members: stop its listeners, then move it back")
    return found


def _locked(conn: Any, queue: str) -> bool:
    """Whether a member holds the catch-up of ``queue``'s group (it reads the archive, not the group's queue)."""
    probe = conn.channel()
    try:
        probe.queue_declare(f"{queue}.lock", passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        if exc.reply_code == 405:
            return True
        raise
    with contextlib.suppress(Exception):
        probe.close()
    return True


def reset(conn: Any, settings: Settings, group: str, since: datetime | None) -> int:
    """Make stopped ``group`` read the archive again from its first message (``since`` None) or the first that
    occurred at or after ``since``, then its queue; returns how many messages it will read from the archive."""
    if not settings.archive:
        raise ConfigError(f"rabbitmq: group {group} cannot be moved back with archive=false (no history is kept)")
    _members(conn, settings, group)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_delete(settings.catch_up_queue(group))  # a catch-up under way starts over
    ch.queue_purge(settings.queue(group))  # all of it is in the archive before the seam about to be published
    catch = CatchUp(conn, settings, group)
    catch.mark_seam()
    first, count = _count_since(conn, settings, catch.position.seam, since)
    catch._write(Position(first, catch.position.seam))
    catch.close()
    return count


def _count_since(conn: Any, settings: Settings, seam: str | None, since: datetime | None) -> tuple[int | None, int]:
    """The offset of the first archive message at or after ``since`` and how many there are up to ``seam``."""
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1000)
    state: dict[str, Any] = {"first": None, "count": 0, "done": False, "seam_at": None}

    def on(channel: Any, method: Any, props: Any, body: bytes) -> None:
        channel.basic_ack(method.delivery_tag)
        if state["done"]:
            return
        headers = props.headers or {}
        if SEAM in headers:
            if props.message_id == seam:
                state["done"], state["seam_at"] = True, int(headers.get("x-stream-offset", 0))
            return
        if state["first"] is None:
            try:
                occurred = _wire.envelope_of(method.routing_key, props, body).occurred_at
            except (ValueError, TypeError, UnicodeDecodeError):
                occurred = None
            if since is not None and occurred is not None and occurred < since:
                return
            state["first"] = int(headers.get("x-stream-offset", 0))
        state["count"] += 1

    ch.basic_consume(settings.archive_queue, on, arguments={"x-stream-offset": "first"})
    idle_until = time.monotonic() + 30
    seen = 0
    while not state["done"]:
        conn.process_data_events(time_limit=0.2)
        if state["count"] != seen:
            seen, idle_until = state["count"], time.monotonic() + 30
        elif time.monotonic() > idle_until:
            raise NotFound(f"rabbitmq: the seam of the reset did not come back from {settings.archive_queue}")
    with contextlib.suppress(Exception):
        ch.close()
    if state["first"] is None:  # nothing at or after since: start at the seam
        return state["seam_at"], 0
    return state["first"], state["count"]


def forget(conn: Any, settings: Settings, group: str) -> bool:
    """Delete ``group``'s own queue and its catch-up (its dead letters stay); refused while it has members."""
    found = _exists(conn, settings.queue(group))
    if (found is not None and found.consumer_count) or _locked(conn, settings.catch_up_queue(group)):
        raise ConfigError(f"rabbitmq group {group} has members: stop its listeners first")
    ch = conn.channel()
    ch.queue_delete(settings.catch_up_queue(group))
    if found is not None:
        ch.queue_delete(settings.queue(group))
    with contextlib.suppress(Exception):
        ch.close()
    return found is not None
