"""Dead letters on Kafka: listed by reading the dead-letter topic from its start, replayed by publishing the
original again.

A Kafka record cannot be deleted, so a replay appends a marker record (header ``pubsubkit-dl-replayed`` = the
letter's id, empty value) to the dead-letter topic; a listing leaves out every letter a marker names. The letters
are read with a consumer that joins no group and commits nothing, so listing changes nothing for anyone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka import Consumer as RawConsumer

from pubsubkit.errors import ConnectionLost, NotFound
from pubsubkit.transport import DeadLetter
from pubsubkit_kafka._wire import DL_PREFIX, Record, decode

__all__ = ["REPLAYED_HEADER", "find", "offsets_since", "read_letters", "replay_marker"]

#: The header of a marker record: the id of the dead letter that was replayed.
REPLAYED_HEADER = DL_PREFIX + "replayed"
#: Seconds a listing waits for the records it knows are there.
_READ_TIMEOUT = 30.0


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


#: Errors of a partition that is just being created or moving its leader: asked again for a while.
_PASSING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
}
_PASSING_WAIT = 15.0


def _watermarks(reader: Any, topic: str, partition: int) -> tuple[int, int]:
    """The low and high watermark of a partition, asked again while its leader is not there yet."""
    deadline = time.monotonic() + _PASSING_WAIT
    while True:
        try:
            low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
            return int(low), int(high)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not isinstance(err, KafkaError) or err.code() not in _PASSING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _records(config: dict[str, Any], topic: str) -> Iterator[Any]:
    """Every record of ``topic`` up to its end when the reading began, partition by partition."""
    reader = RawConsumer(
        {**config, "group.id": "pubsubkit-dead-letters", "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )
    try:
        metadata = reader.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return
        ends: dict[int, int] = {}
        for p in metadata.partitions:
            low, high = _watermarks(reader, topic, p)
            if high > low:
                ends[p] = high
        if not ends:
            return
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + _READ_TIMEOUT
        while ends and time.monotonic() < deadline:
            msg = reader.poll(0.5)
            if msg is None:
                continue
            partition, offset, error = msg.partition(), msg.offset(), msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                    ends.pop(partition, None)
                continue
            if partition is None or offset is None:
                continue
            yield msg
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
        if ends:
            raise ConnectionLost(f"kafka: the dead-letter topic {topic} could not be read to its end in time")
    except KafkaException as exc:
        raise ConnectionLost(f"kafka: reading the dead-letter topic {topic}: {exc}") from exc
    finally:
        reader.close()


def _letter(msg: Any) -> DeadLetter | None:
    """The dead letter of one record of the dead-letter topic (None for a marker or a foreign record)."""
    fields: dict[str, str] = {}
    original: list[tuple[str, str | bytes | None]] = []
    for name, value in msg.headers() or ():
        if name.startswith(DL_PREFIX):
            fields[name[len(DL_PREFIX) :]] = _text(value)
        else:
            original.append((name, value))
    if "id" not in fields or "replayed" in fields:
        return None
    delivery = decode(
        msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), original, msg.timestamp()[1], 1, None
    )
    return DeadLetter(
        id=fields["id"],
        group=fields.get("group", ""),
        reason=fields.get("reason", ""),
        error=fields.get("error", ""),
        attempts=int(fields.get("attempts") or 0),
        original_name=fields.get("original-name") or None,
        envelope=delivery.envelope,
        raw=None if delivery.envelope is not None else (msg.value() or b""),
        dead_at=datetime.fromisoformat(fields["dead-at"]) if fields.get("dead-at") else None,
    )


def read_letters(config: dict[str, Any], topic: str, group: str | None = None) -> list[DeadLetter]:
    """The dead letters of ``topic`` not replayed yet (of ``group``, or of every group), oldest first."""
    letters: list[DeadLetter] = []
    replayed: set[str] = set()
    for msg in _records(config, topic):
        for name, value in msg.headers() or ():
            if name == REPLAYED_HEADER:
                replayed.add(_text(value))
        letter = _letter(msg)
        if letter is not None and (group is None or letter.group == group):
            letters.append(letter)
    kept = [x for x in letters if x.id not in replayed]
    kept.sort(key=lambda x: x.dead_at.timestamp() if x.dead_at is not None else 0.0)
    return kept


def replay_marker(letter_id: str) -> Record:
    """The record that marks ``letter_id`` as replayed."""
    return (b"", None, [(REPLAYED_HEADER, letter_id.encode())], int(time.time() * 1000))


def find(letters: Sequence[DeadLetter], letter_id: str) -> DeadLetter:
    """The letter ``letter_id`` of ``letters``; NotFound when it is not there or cannot be replayed."""
    for letter in letters:
        if letter.id == letter_id:
            if letter.envelope is None:
                raise NotFound(f"dead letter {letter_id} has no decodable message to replay")
            return letter
    raise NotFound(f"dead letter {letter_id} does not exist (or was replayed already)")


def offsets_since(config: dict[str, Any], topic: str, since: datetime | None) -> tuple[dict[int, int], int]:
    """Per partition of ``topic``, the offset of its first record kept (``since`` None) or of its first at or
    after ``since``; and how many records lie from there to the end."""
    reader = RawConsumer({**config, "enable.auto.commit": False})
    try:
        metadata = reader.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return {}, 0
        offsets: dict[int, int] = {}
        count = 0
        for p in metadata.partitions:
            low, high = _watermarks(reader, topic, p)
            offset = low
            if since is not None:
                [found] = reader.offsets_for_times(
                    [TopicPartition(topic, p, int(since.timestamp() * 1000))], timeout=10
                )
                offset = high if found.offset < 0 else max(found.offset, low)
            offsets[p] = offset
            count += high - offset
        return offsets, count
    except KafkaException as exc:
        raise ConnectionLost(f"kafka: reading the offsets of topic {topic}: {exc}") from exc
    finally:
        reader.close()
