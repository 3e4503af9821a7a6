"""Dead letters on SQS: the groups' dead-letter queues (``<prefix>-<group>-dlq``), found by name, read without
hiding what they hold, and replayed by publishing the original to the topic again and deleting the letter.

A listing receives every message of the queue, holding each (so that the next receive brings the next), and
then makes them all visible again; a replay holds the one letter until it has published it and deletes it. A
letter the consumer dead-lettered carries the attribute ``dead_letter`` (why, and after how many attempts); one
SQS moved there after ``max_receive_count`` receives carries none, and is listed with the reason
``max-receives``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from pubsubkit.errors import NotFound
from pubsubkit.transport import DeadLetter
from pubsubkit_sqs import _wire
from pubsubkit_sqs._options import Options

__all__ = ["dead_letter_queues", "letter_of", "read_queue"]

#: Seconds a listing holds the messages it read before it makes them visible again.
_HOLD = 30


def dead_letter_queues(sqs: Any, options: Options, group: str | None) -> dict[str, str]:
    """The dead-letter queue URL of ``group``, or of every group of this prefix, by group name."""
    if group is not None:
        name = options.queue_name(group, dead=True)
        try:
            return {group: str(sqs.get_queue_url(QueueName=name)["QueueUrl"])}
        except sqs.exceptions.QueueDoesNotExist:
            return {}
    found: dict[str, str] = {}
    head, tail = f"{options.prefix}-", f"-dlq{options.suffix}"
    pages = sqs.get_paginator("list_queues").paginate(QueueNamePrefix=head, PaginationConfig={"PageSize": 1000})
    for page in pages:
        for url in page.get("QueueUrls", []):
            name = str(url).rsplit("/", 1)[-1]
            if name.endswith(tail):
                found[name[len(head) : -len(tail)]] = str(url)
    return found


def letter_of(group: str, message: Mapping[str, Any]) -> DeadLetter:
    """The dead letter of one message of ``group``'s dead-letter queue."""
    attrs = message.get("MessageAttributes") or {}
    info_text = _wire.attribute(attrs, _wire.ATTR_DEAD_LETTER)
    info: dict[str, Any] = orjson.loads(info_text) if info_text else {}
    try:
        envelope = _wire.decode(message)
    except (ValueError, TypeError):
        envelope = None
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    dead_at = info.get("dead_at") or (datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat() if sent else None)
    return DeadLetter(
        id=f"{group}/{message['MessageId']}",
        group=group,
        reason=str(info.get("reason") or "max-receives"),
        error=str(info.get("error") or "received more often than max_receive_count without being settled"),
        attempts=int(info.get("attempts") or 0),
        original_name=info.get("original_name") or (envelope.name if envelope is not None else None),
        envelope=envelope,
        raw=None if envelope is not None else str(message.get("Body", "")).encode(),
        dead_at=datetime.fromisoformat(dead_at) if dead_at else None,
    )


def read_queue(sqs: Any, url: str, *, limit: int, want: str | None = None) -> list[dict[str, Any]]:
    """Up to ``limit`` messages of the queue at ``url``; with ``want`` (a MessageId), that one message, or
    NotFound.

    Each receive holds what it got for :data:`_HOLD` seconds, so that the next one brings the others (a FIFO
    queue hands out a message group's next message only while the one before is held); then every message
    read is made visible again at once, except ``want``, which stays held for the caller to delete.
    """
    found: dict[str, dict[str, Any]] = {}
    try:
        while len(found) < limit and (want is None or want not in found):
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=_HOLD,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            for m in got:
                found[m["MessageId"]] = m
    finally:
        others = [m for mid, m in found.items() if mid != want]
        for i in range(0, len(others), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(others[i : i + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    if want is not None:
        if want not in found:
            raise NotFound(f"dead letter {want} is not in its queue (replayed already, or expired)")
        return [found[want]]
    return list(found.values())[:limit]
