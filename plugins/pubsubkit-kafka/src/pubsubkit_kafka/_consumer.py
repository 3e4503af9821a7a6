"""A member of a Kafka consumer group, as the listener runtime sees it.

Offsets are committed after handling: :meth:`KafkaConsumer.ack` marks records handled, and the consumer commits,
for each partition, the offset below which every record it delivered is settled, at most every
``commit_interval`` seconds (asynchronously), on partition revoke and on close (synchronously). When a rebalance
revokes a partition, the records of it the listener holds (running or waiting for a lane) are first given up to
``REVOKE_GRACE`` seconds to be handled, then the waiting ones and those waiting to be retried are given back and
the running ones get up to ``REVOKE_WAIT`` seconds in all; what is settled is committed, so that the partition's
next owner does not handle it again. (Giving back a waiting record at once would make the next owner handle again
every later record of its partition that was handled meanwhile.) A released
record is delivered again by seeking its partition back; records it meets again that are still in flight or
already settled are skipped, so a seek never duplicates work. A record never settled (the process died) comes
back to the group from the last committed offset after the session times out.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from confluent_kafka import Consumer as RawConsumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from pubsubkit.envelope import new_id, utcnow
from pubsubkit.errors import Closed, ConfigError, ConnectionLost
from pubsubkit.transport import Consumer, DeadLetter, Delivery
from pubsubkit_kafka._options import KafkaSettings
from pubsubkit_kafka._wire import Record, decode, encode_value, letter_headers, message_headers

__all__ = ["KafkaConsumer"]

log = logging.getLogger("pubsubkit.kafka")

_generations = itertools.count(1)

#: On a revoke, how long the listener may take to handle the records of the revoked partitions it holds (running,
#: waiting for a lane, or waiting to be retried) before those not yet started, and the retries, are given back.
REVOKE_GRACE = 2.0
#: On a revoke, how long the handlers still running on records of the revoked partitions may take to finish in all
#: before the partition is given up; what is not settled by then is handled again by the partition's next owner.
REVOKE_WAIT = 10.0
#: On close, how long leaving the group may take before the consumer goes on without waiting for it.
CLOSE_WAIT = 20.0
#: Records keep_alive takes while the listener is full before it pauses the partitions. A pause throws away what
#: librdkafka fetched ahead (refetched on resume, which took 0.2 to 0.9 s after a full second), so the short full
#: windows of a busy listener do not pause; one that stays full (about 20 polls a second, one record each) does.
KEEP_ALIVE_BUFFER = 100


class Producing(Protocol):
    """What a consumer needs of its transport: the settings, the topic, and producing dead letters."""

    settings: KafkaSettings
    topic: str

    def client_id(self, group: str) -> str: ...

    def ensure_topic(self, topic: str, *, again: bool = False) -> None: ...

    def forget_topic(self, topic: str) -> None: ...

    def produce(self, topic: str, records: Sequence[Record]) -> None: ...


class _Partition:
    """What one assignment of a partition has delivered: unsettled offsets and how often each was delivered."""

    __slots__ = ("committed", "gen", "high", "pending", "released", "revoked")

    def __init__(self) -> None:
        self.gen = next(_generations)
        self.revoked = threading.Event()  # set when the partition is taken away: no new attempts of its records
        self.pending: dict[int, int] = {}  # unsettled offset -> deliveries so far
        self.released: set[int] = set()  # unsettled offsets given back, to deliver again
        self.high: int | None = None  # one past the highest offset delivered
        self.committed: int | None = None

    def position(self) -> int | None:
        """The offset to commit: every delivered record below it is settled."""
        if self.pending:
            return min(self.pending)
        return self.high


class KafkaConsumer(Consumer):
    """One member of Kafka consumer group ``group`` (``group.id``), subscribed to the transport's topic."""

    def __init__(self, transport: Producing, group: str) -> None:
        self.t = transport
        self.topic = transport.topic
        self.group = group
        self.commit_interval = transport.settings.commit_interval
        self._parts: dict[int, _Partition] = {}
        self._buffer: list[Message] = []
        self._seeks: dict[int, int] = {}
        self._dirty = False
        self._last_commit = time.monotonic()
        self._assigned = False
        self._closed = False
        self._subscribed = False
        self._settle: Callable[[], None] | None = None
        self._paused: list[TopicPartition] = []
        self._out: list[Delivery] = []  # delivered by the receive under way, not yet returned
        config = transport.settings.consumer_config(group, transport.client_id(group))
        try:
            self.c = RawConsumer(config)
        except KafkaException as exc:
            raise ConfigError(f"the Kafka consumer of group {group} refused its configuration: {exc}") from exc

    # --- group membership --------------------------------------------------------------------------------

    def _subscribe(self) -> None:
        """Join the group at the first receive, not before: a member that does not poll would hold up the
        rebalance of every other member. A new group starts at the earliest offset, so nothing published
        before the join is missed."""
        try:
            self.c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        except KafkaException as exc:
            raise ConnectionLost(f"cannot join Kafka group {self.group}: {exc}") from exc
        self._subscribed = True

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.debug("kafka group %s: assigned %s", self.group, [tp.partition for tp in partitions])
        for tp in partitions:
            self._parts[tp.partition] = _Partition()
            self._seeks.pop(tp.partition, None)
        self._assigned = True
        if self._paused:  # paused by keep_alive before the rebalance: a pause outlives the reassignment
            self._paused = [tp for tp in self._paused if tp.partition not in self._parts]
            with contextlib.suppress(KafkaException):
                self.c.resume(partitions)

    def start_at_end(self) -> None:
        """For a group without history: the partitions the group has no committed offset for are committed at
        their end now, before it joins, so that it gets what is published from here on (and, stopped, what is
        published while it is away). A group that has offsets keeps them."""
        try:
            topic = self.c.list_topics(self.topic, timeout=10).topics[self.topic]
            partitions = [TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
            fresh = [tp for tp in self.c.committed(partitions, timeout=10) if tp.offset < 0]
            for tp in fresh:
                tp.offset = self.c.get_watermark_offsets(tp, timeout=10)[1]
            if fresh:
                self.c.commit(offsets=fresh, asynchronous=False)
        except KafkaException as exc:
            raise ConnectionLost(f"kafka group {self.group}: cannot start at the end of the log: {exc}") from exc

    def bind_settler(self, settle: Callable[[], None]) -> None:
        self._settle = settle

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions}
        log.debug("kafka group %s: revoked %s", self.group, sorted(revoked))
        self._buffer = [m for m in self._buffer if m.partition() not in revoked]  # fetched, not yet delivered
        self._unreceive(revoked)
        start = time.monotonic()
        self._wait_settled(revoked, start + REVOKE_GRACE)  # the records waiting for a lane are handled too
        for p in revoked:  # then those not started and the retries are given back; running handlers finish
            if p in self._parts:
                self._parts[p].revoked.set()
        self._wait_settled(revoked, start + REVOKE_WAIT)
        if self._in_flight(revoked):
            log.warning("kafka group %s: records still in flight on revoke; the next owner gets them", self.group)
        self._commit(sync=True, only=revoked)
        self._drop(partitions)

    def _wait_settled(self, partitions: set[int], deadline: float) -> None:
        """Settle what the listener finished, until no record of ``partitions`` is with it, or ``deadline``."""
        while self._settle is not None and self._in_flight(partitions) and time.monotonic() < deadline:
            self._settle()

    def _unreceive(self, partitions: set[int]) -> None:
        """Take back the records of ``partitions`` that the receive under way has not returned yet (a rebalance
        callback runs inside it): the listener cannot settle them, so they are released, not waited for."""
        kept = []
        for d in self._out:
            gen, p, o = d.token
            st = self._parts.get(p)
            if p in partitions and st is not None and st.gen == gen:
                st.released.add(o)
            else:
                kept.append(d)
        self._out[:] = kept

    def _in_flight(self, partitions: set[int]) -> bool:
        """Whether a record of these partitions is still with the listener (neither settled nor given back)."""
        return any(len(st.pending) > len(st.released) for p, st in self._parts.items() if p in partitions)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.warning("kafka group %s: lost %s", self.group, [tp.partition for tp in partitions])
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in partitions}
        for p in gone:
            st = self._parts.pop(p, None)
            if st is not None:
                st.revoked.set()
            self._seeks.pop(p, None)
        self._buffer = [m for m in self._buffer if m.partition() not in gone]

    # --- committing --------------------------------------------------------------------------------------

    def _commit(self, *, sync: bool, only: set[int] | None = None) -> None:
        offsets = []
        for p, st in self._parts.items():
            if only is not None and p not in only:
                continue
            pos = st.position()
            if pos is not None and pos != st.committed:
                offsets.append((st, TopicPartition(self.topic, p, pos)))
        self._last_commit = time.monotonic()
        if only is None:
            self._dirty = False
        if not offsets:
            return
        try:
            if sync:
                self.c.commit(offsets=[tp for _, tp in offsets], asynchronous=False)
            else:
                self.c.commit(offsets=[tp for _, tp in offsets], asynchronous=True)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET:
                return
            log.warning("kafka group %s: commit failed (%s); the records come back to the group", self.group, exc)
            return
        for st, tp in offsets:
            st.committed = tp.offset

    def _maybe_commit(self) -> None:
        if self._dirty and time.monotonic() - self._last_commit >= self.commit_interval:
            self._commit(sync=False)

    # --- receiving ---------------------------------------------------------------------------------------

    def keep_alive(self) -> None:
        """Poll, so that rebalances go on while the listener is full; a record polled waits for the next receive.

        Once :data:`KEEP_ALIVE_BUFFER` records wait, every partition is paused, and no more are taken.
        """
        if self._closed or not self._subscribed:
            return
        try:
            if len(self._buffer) >= KEEP_ALIVE_BUFFER:
                held = {tp.partition for tp in self._paused}
                fresh = [tp for tp in self.c.assignment() if tp.partition not in held]  # new since a rebalance
                if fresh:
                    self.c.pause(fresh)
                    self._paused += fresh
            msg = self.c.poll(0)
        except KafkaException as exc:
            raise ConnectionLost(f"Kafka group {self.group}: {exc}") from exc
        if msg is not None:
            self._buffer.append(msg)  # delivered by the next receive, before what it fetches

    def _resume(self) -> None:
        paused, self._paused = self._paused, []
        with contextlib.suppress(KafkaException):
            self.c.resume(paused)

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._closed:
            raise Closed("consumer is closed")
        if not self._subscribed:
            self._subscribe()
        if self._paused:
            self._resume()
        self._maybe_commit()
        self._do_seeks()
        out: list[Delivery] = []
        self._out = out  # what a rebalance callback during this receive takes back (_unreceive)
        deadline = time.monotonic() + timeout
        try:
            while len(out) < max_messages:
                if self._buffer:
                    need = max_messages - len(out)
                    batch, self._buffer = self._buffer[:need], self._buffer[need:]
                else:
                    remaining = deadline - time.monotonic()
                    if out or remaining <= 0:
                        batch = self.c.consume(max_messages - len(out), 0)
                        if not batch:
                            break
                    else:
                        first = self.c.poll(remaining)
                        if first is None:
                            break
                        batch = [first, *self.c.consume(max_messages - len(out) - 1, 0)]
                for msg in batch:
                    d = self._delivery(msg)
                    if d is not None:
                        out.append(d)
        except KafkaException as exc:
            raise ConnectionLost(f"Kafka group {self.group}: {exc}") from exc
        finally:
            self._out = []  # returned: the listener settles these
        return out

    def _delivery(self, msg: Message) -> Delivery | None:
        err = msg.error()
        if err is not None:
            self._on_record_error(err)
            return None
        p, o = msg.partition(), msg.offset()
        if p is None or o is None:
            return None
        st = self._parts.get(p)
        if st is None:  # a record of a partition no longer ours (or assigned without a callback)
            if self._assigned:
                return None
            st = self._parts[p] = _Partition()
        if st.high is None or o >= st.high:
            st.high = o + 1
            st.pending[o] = attempt = 1
        elif o in st.released:
            st.released.discard(o)
            st.pending[o] = attempt = st.pending[o] + 1
        else:
            return None  # still in flight, or settled: met again after a seek back
        headers = msg.headers()
        if headers is not None and not isinstance(headers, list):
            headers = list(headers.items())
        ts = msg.timestamp()[1]
        return decode(self.topic, p, o, msg.key(), msg.value(), headers, ts, attempt, (st.gen, p, o), st.revoked)

    def _on_record_error(self, err: KafkaError) -> None:
        code = err.code()
        if code == KafkaError._PARTITION_EOF:
            return
        if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            log.warning("kafka group %s: topic %s is missing; creating it", self.group, self.topic)
            self.t.forget_topic(self.topic)
            with contextlib.suppress(ConnectionLost):
                self.t.ensure_topic(self.topic)
            return
        if err.fatal():
            raise ConnectionLost(f"Kafka group {self.group}: {err.str()}")
        log.warning("kafka group %s: %s", self.group, err.str())

    def _mine(self, d: Delivery) -> tuple[_Partition, int] | None:
        gen, p, o = d.token
        st = self._parts.get(p)
        if st is None or st.gen != gen or o not in st.pending:
            return None  # the partition was revoked since: its new owner has the record
        return st, o

    # --- settling ----------------------------------------------------------------------------------------

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            mine = self._mine(d)
            if mine is not None:
                st, o = mine
                del st.pending[o]
                st.released.discard(o)
                self._dirty = True
        self._maybe_commit()

    def release(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            mine = self._mine(d)
            if mine is not None:
                st, o = mine
                st.released.add(o)
                p = d.token[1]
                self._seeks[p] = min(o, self._seeks.get(p, o))
        if not self._closed:
            self._do_seeks()

    def _do_seeks(self) -> None:
        for p, offset in list(self._seeks.items()):
            self._buffer = [m for m in self._buffer if m.partition() != p or m.error() is not None]
            try:
                self.c.seek(TopicPartition(self.topic, p, offset))
            except KafkaException as exc:
                log.debug("kafka group %s: seek of partition %d deferred: %s", self.group, p, exc)
                continue
            del self._seeks[p]

    def dead_letter(self, delivery: Delivery, letter: DeadLetter) -> None:
        env = delivery.envelope
        if env is not None:
            value, key, headers = encode_value(env), env.key, message_headers(env)
        else:
            value, key, headers = delivery.raw or b"", None, []
        headers = headers + letter_headers(letter, new_id(), utcnow())
        record: Record = (value, key, headers, int(time.time() * 1000))
        self.t.produce(self.t.settings.dead_letter_topic, [record])
        self.ack([delivery])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._subscribed:
                self._commit(sync=True)
        except (KafkaException, RuntimeError) as exc:
            log.warning("kafka group %s: the last commit failed: %s", self.group, exc)
        # Leaving the group (the revoke callback commits what is settled) waits for the group's coordinator, and
        # librdkafka waits for ever when its connection to the coordinator hangs (seen after the broker was paused):
        # it runs in a thread of its own, and a process that stops does not wait for it longer than CLOSE_WAIT. What
        # is not committed comes back to the group, whose coordinator drops this member after session.timeout.ms.
        left = threading.Event()

        def leave() -> None:
            try:
                self.c.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("kafka group %s: leaving the group failed: %s", self.group, exc)
            finally:
                left.set()

        threading.Thread(target=leave, name=f"pubsubkit-kafka-leave-{self.group}", daemon=True).start()
        if not left.wait(CLOSE_WAIT):
            log.warning(
                "kafka group %s: leaving the group takes longer than %gs (the coordinator does not answer); going on",
                self.group,
                CLOSE_WAIT,
            )
