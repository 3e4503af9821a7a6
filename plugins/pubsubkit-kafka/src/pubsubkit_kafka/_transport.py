"""The Kafka transport: one idempotent producer and one admin client per transport, consumers per listener."""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pubsubkit.envelope import Envelope
from pubsubkit.errors import Closed, ConfigError, ConnectionLost, PublishError
from pubsubkit.plugin import redact
from pubsubkit.transport import Channel, Consumer, DeadLetter, Transport
from pubsubkit_kafka._letters import find, offsets_since, read_letters, replay_marker
from pubsubkit_kafka._options import CAPABILITIES, KafkaSettings, parse_url
from pubsubkit_kafka._wire import ID_HEADER, TIME_HEADER, Record, records

__all__ = ["CAPABILITIES", "KafkaTransport"]

log = logging.getLogger("pubsubkit.kafka")


_CONNECTION_CODES = {
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TRANSPORT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
}
_UNKNOWN_TOPIC = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
#: How long a publish waits for confirms while the producer reports every broker down.
_DOWN_WAIT = 2.0


class _Batch:
    """The delivery reports of one ``publish`` call."""

    __slots__ = ("errors", "left")

    def __init__(self, count: int) -> None:
        self.left = count
        self.errors: list[KafkaError] = []

    def report(self, err: KafkaError | None, msg: Any) -> None:
        self.left -= 1
        if err is not None:
            self.errors.append(err)


#: Seconds each request of a lag reading may wait for the broker.
LAG_TIMEOUT = 5.0


class KafkaTransport(Transport):
    """``kafka://host:port[,host:port]?options``: every event goes to one topic; the key picks the partition."""

    capabilities = CAPABILITIES

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.settings: KafkaSettings = parse_url(url, options)
        self.topic = self.settings.topic
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None
        self._ensured: set[str] = set()
        self._publishing = 0
        self._down_since: float | None = None
        self._fatal = False
        self._closed = False
        self._clients = itertools.count(1)
        self._lag_readers: dict[str, tuple[threading.Lock, Any]] = {}  # group -> a consumer reading its offsets

    # --- clients -----------------------------------------------------------------------------------------

    def _on_error(self, err: KafkaError) -> None:
        code = err.code()
        if err.fatal():
            log.warning("kafka producer fatal error (a new producer takes over): %s", err)
            self._reset()
        elif code == KafkaError._ALL_BROKERS_DOWN:
            self._down_since = time.monotonic()
        elif code != KafkaError._TRANSPORT:
            log.warning("kafka producer: %s", err)

    def _reset(self) -> None:
        """The producer cannot go on (e.g. a restarted broker forgot its producer id): replace it, and check the
        topics again, which a broker that keeps no data has forgotten too."""
        self._fatal = True
        self._ensured.clear()

    def producer(self) -> Producer:
        """The shared producer, created on first use (and again after a fatal error)."""
        if self._closed:
            raise Closed(f"{self.url} is closed")
        p = self._producer
        if p is not None and not self._fatal:
            return p
        with self._lock:
            if self._closed:
                raise Closed(f"{self.url} is closed")
            if self._producer is None or self._fatal:
                old, self._fatal = self._producer, False
                try:
                    self._producer = Producer({**self.settings.producer_config(), "error_cb": self._on_error})
                except KafkaException as exc:
                    raise ConfigError(
                        f"{redact(self.url)}: the Kafka producer refused its configuration: {exc}"
                    ) from exc
                self._down_since = None
                if old is not None:
                    with contextlib.suppress(KafkaException):
                        old.purge()
                        old.flush(0)
            return self._producer

    def admin(self) -> AdminClient:
        with self._lock:
            if self._admin is None:
                try:
                    self._admin = AdminClient(self.settings.common_config())
                except KafkaException as exc:
                    raise ConfigError(
                        f"{redact(self.url)}: the Kafka admin client refused its configuration: {exc}"
                    ) from exc
            return self._admin

    def ensure_topic(self, topic: str, *, again: bool = False) -> None:
        """Create ``topic`` with the configured partition count unless it exists (once per transport)."""
        if topic in self._ensured and not again:
            return
        spec = NewTopic(
            topic, num_partitions=self.settings.partitions, replication_factor=self.settings.replication_factor
        )
        futures = self.admin().create_topics([spec], operation_timeout=10, request_timeout=15)
        try:
            futures[topic].result(timeout=20)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise ConnectionLost(f"cannot create Kafka topic {topic} at {self.settings.bootstrap}: {exc}") from exc
        except Exception as exc:  # a timeout of the future
            raise ConnectionLost(f"cannot create Kafka topic {topic} at {self.settings.bootstrap}: {exc!r}") from exc
        self._ensured.add(topic)

    def forget_topic(self, topic: str) -> None:
        """The broker said the topic does not exist (a fresh broker): create it again before its next use."""
        self._ensured.discard(topic)

    def client_id(self, group: str) -> str:
        return f"pubsubkit-{group}-{next(self._clients)}"

    # --- publishing --------------------------------------------------------------------------------------

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.produce(self.topic, records(envelopes))

    def produce(self, topic: str, records: Sequence[Record]) -> None:
        """Produce ``records`` to ``topic`` and wait for every delivery report; PublishError on any failure."""
        if not records:
            if self._closed:
                raise Closed(f"{self.url} is closed")
            return
        producer = self.producer()
        self.ensure_topic(topic)
        batch = _Batch(len(records))
        report = batch.report
        started = time.monotonic()
        with self._lock:
            self._publishing += 1
        try:
            for i, (value, key, headers, ts) in enumerate(records, 1):
                while True:
                    try:
                        producer.produce(topic, value, key, headers=headers, timestamp=ts, on_delivery=report)
                        break
                    except BufferError:  # the local queue is full: serve delivery reports, then try again
                        producer.poll(0.05)
                if not i % 64:  # serve delivery reports now and then while producing a long batch
                    producer.poll(0)
            self._wait(producer, batch, started)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.fatal():
                self._reset()
                raise ConnectionLost(f"Kafka producer failed; a new one takes over: {exc}") from exc
            raise PublishError(f"Kafka producer refused a message for {topic}: {exc}") from exc
        finally:
            with self._lock:
                self._publishing -= 1
        if batch.errors:
            self._raise(topic, batch.errors)
        self._down_since = None

    def _wait(self, producer: Producer, batch: _Batch, started: float) -> None:
        while batch.left > 0:
            if self._closed:
                raise Closed(f"{self.url} was closed while publishing")
            if self._down_since is not None and time.monotonic() - started > _DOWN_WAIT:
                # The broker went away: whatever it comes back as (a fresh one forgot this producer's id and
                # maybe the topic), a new producer starts clean. The messages still queued may or may not
                # have been stored, and the caller retries them with the same ids.
                self._reset()
                raise ConnectionLost(f"no Kafka broker reachable at {self.settings.bootstrap}")
            if self._publishing <= 1:
                producer.flush(0.2)  # alone: flush also sends at once, without lingering
            else:
                producer.poll(0.01)  # others publish too: do not wait for their messages

    def _raise(self, topic: str, errors: list[KafkaError]) -> None:
        err = errors[0]
        codes = {e.code() for e in errors}
        if any(e.fatal() for e in errors):
            self._reset()
        if codes & _UNKNOWN_TOPIC:
            self.forget_topic(topic)
        message = f"{len(errors)} message(s) to Kafka topic {topic} not confirmed: {err.str()}"
        if codes <= _CONNECTION_CODES:
            raise ConnectionLost(message)
        raise PublishError(message)

    # --- consuming and the rest --------------------------------------------------------------------------

    def consumer(self, group: str, names: Collection[str] | None, *, history: bool = True) -> Consumer:
        if self._closed:
            raise Closed(f"{self.url} is closed")
        from pubsubkit_kafka._consumer import KafkaConsumer

        consumer = KafkaConsumer(self, group)
        try:
            self.ensure_topic(self.topic)
            if not history:
                consumer.start_at_end()
        except BaseException:
            consumer.close()
            raise
        return consumer

    # --- dead letters ------------------------------------------------------------------------------------

    def dead_letters(self, group: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The dead letters in the dead-letter topic not replayed yet (of ``group``, or of all), oldest first."""
        if self._closed:
            raise Closed(f"{self.url} is closed")
        config = self.settings.consumer_config("pubsubkit-dead-letters", self.client_id("dead-letters"))
        return read_letters(config, self.settings.dead_letter_topic, group)[:limit]

    def replay_dead_letter(self, letter_id: str) -> None:
        """Publish the original message again (with its id, to every group) and mark the letter replayed."""
        letter = find(self.dead_letters(None, limit=1_000_000), letter_id)
        assert letter.envelope is not None  # find() refuses a letter without one
        self.publish([letter.envelope])
        self.produce(self.settings.dead_letter_topic, [replay_marker(letter_id)])

    # --- replay ------------------------------------------------------------------------------------------

    def reset_group(self, group: str, since: datetime | None = None) -> int:
        """Move ``group``'s committed offsets back to the first record kept (``since`` None) or the first at or
        after ``since``, on every partition. Kafka allows it only while the group has no member: stop its
        listeners first (ConfigError otherwise). A group that never joined starts there when it first does."""
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        if self._closed:
            raise Closed(f"{self.url} is closed")
        group_id = self.settings.group_prefix + group
        config = self.settings.consumer_config(group, self.client_id(group))
        offsets, count = offsets_since(config, self.topic, since)
        if not offsets:
            return 0
        request = ConsumerGroupTopicPartitions(group_id, [TopicPartition(self.topic, p, o) for p, o in offsets.items()])
        try:
            errors = [
                tp.error
                for future in self.admin().alter_consumer_group_offsets([request]).values()
                for tp in future.result(timeout=30).topic_partitions
                if tp.error is not None
            ]
        except KafkaException as exc:
            errors = [exc.args[0] if exc.args else exc]
        if errors:
            first = errors[0]
            code = first.code() if isinstance(first, KafkaError) else None
            if code in (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS) or "non-empty" in str(first):
                raise ConfigError(f"kafka group {group} has members: stop its listeners, then move it back ({first})")
            raise ConnectionLost(f"kafka: moving group {group} back: {first}")
        return count

    def lag(self, group: str) -> dict[str, int] | None:
        """Per partition, the records after ``group``'s committed offset (after the partition's first kept
        record when it has none), by partition number. Read by a consumer of the group that never joins it; a
        broker that does not answer within ``LAG_TIMEOUT`` seconds is ConnectionLost."""
        from confluent_kafka import Consumer as RawConsumer
        from confluent_kafka import TopicPartition

        with self._lock:
            if self._closed:
                raise Closed(f"{self.url} is closed")
            reader = self._lag_readers.get(group)
            if reader is None:
                config = self.settings.consumer_config(group, self.client_id(f"{group}-lag"))
                reader = self._lag_readers[group] = (threading.Lock(), RawConsumer(config))
        lock, consumer = reader
        with lock:  # close() leaves a reader in use alone
            if self._closed:
                raise Closed(f"{self.url} is closed")
            try:
                topic = consumer.list_topics(self.topic, timeout=LAG_TIMEOUT).topics.get(self.topic)
                if topic is None or topic.error is not None:
                    return None
                partitions = [TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
                out = {}
                for tp in consumer.committed(partitions, timeout=LAG_TIMEOUT):
                    where = TopicPartition(self.topic, tp.partition)
                    low, high = consumer.get_watermark_offsets(where, timeout=LAG_TIMEOUT, cached=False)
                    out[str(tp.partition)] = max(0, high - (tp.offset if tp.offset >= 0 else low))
                return out
            except KafkaException as exc:
                raise ConnectionLost(f"kafka: reading the lag of group {group}: {exc}") from exc

    def forget_group(self, group: str) -> bool:
        """Delete consumer group ``group`` and its committed offsets (Kafka allows it only while the group has no
        member: ConfigError otherwise). Returns whether it existed."""
        if self._closed:
            raise Closed(f"{self.url} is closed")
        group_id = self.settings.group_prefix + group
        try:
            for future in self.admin().delete_consumer_groups([group_id], request_timeout=30).values():
                future.result(timeout=30)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            code = error.code() if isinstance(error, KafkaError) else None
            if code == KafkaError.GROUP_ID_NOT_FOUND:
                return False
            if code == KafkaError.NON_EMPTY_GROUP:
                raise ConfigError(f"kafka group {group} has members: stop its listeners, then remove it") from None
            raise ConnectionLost(f"kafka: removing group {group}: {error}") from exc
        return True

    def channel(self, name: str) -> Channel:
        """Every event on the one topic, its value ``{"eventName": name, "payload": {...}}`` (the Go format)."""
        return Channel(
            address=self.topic,
            bindings={
                "kafka": {"topic": self.topic, "partitions": self.settings.partitions, "bindingVersion": "0.5.0"}
            },
            headers={ID_HEADER: "the message's id", TIME_HEADER: "when the event occurred (ISO 8601)"},
            payload_in="payload",
            name_in="eventName",
        )

    def ping(self) -> None:
        try:
            self.admin().list_topics(timeout=5)
        except KafkaException as exc:
            raise ConnectionLost(f"Kafka at {self.settings.bootstrap} does not answer: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            producer, self._producer = self._producer, None
            self._admin = None
            readers, self._lag_readers = list(self._lag_readers.values()), {}
        for lock, reader in readers:
            if lock.acquire(timeout=0.1):  # else a reading is under way: the reader goes with the process
                with contextlib.suppress(KafkaException, RuntimeError):
                    reader.close()
                lock.release()
        if producer is not None:
            with contextlib.suppress(KafkaException):
                producer.flush(5)
