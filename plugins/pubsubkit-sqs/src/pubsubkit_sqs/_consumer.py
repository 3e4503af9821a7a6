"""A member of a consumer group: long-polls the group's queue, settles with batch calls."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import orjson

from pubsubkit.envelope import new_id, utcnow
from pubsubkit.errors import Closed
from pubsubkit.transport import Consumer, DeadLetter, Delivery
from pubsubkit_sqs import _wire
from pubsubkit_sqs._aws import Aws, GroupQueues
from pubsubkit_sqs._errors import DRIVER_ERRORS, is_missing, translate
from pubsubkit_sqs._options import Options

__all__ = ["SqsConsumer"]

log = logging.getLogger("pubsubkit.sqs")

BATCH = 10
MAX_ATTRIBUTES = 10  # SQS's limit of message attributes per message
MAX_ERROR = 16_000  # characters of a dead letter's error kept in its attribute


# One ReceiveMessage call in flight per queue in this process: moto's receive is not atomic, and two concurrent
# calls can hand out the same message. A call takes up to 10 messages, so taking turns costs little.
_RECEIVING: dict[str, threading.Lock] = {}
_RECEIVING_LOCK = threading.Lock()


def _receive_lock(url: str) -> threading.Lock:
    with _RECEIVING_LOCK:
        return _RECEIVING.setdefault(url, threading.Lock())


@attrs.frozen
class Token:
    """What a delivery needs to be settled: the receipt handle, and the message as received (for the DLQ)."""

    receipt: str
    message_id: str
    body: str
    attributes: Mapping[str, Any]


def _token(d: Delivery) -> Token:
    token = d.token
    assert isinstance(token, Token), "a delivery of another consumer"
    return token


class SqsConsumer(Consumer):
    """One member of a group: every member of the group receives from the group's queue."""

    def __init__(
        self, aws: Aws, options: Options, group: str, queues: GroupQueues, transport_closed: Callable[[], bool]
    ) -> None:
        self._transport_closed = transport_closed
        self.aws = aws
        self.options = options
        self.group = group
        self.queues = queues
        self.lease_seconds = float(self.options.visibility)
        self._unsettled: dict[str, Token] = {}
        self._closed = False
        self.aws.joined(group)

    # --- receiving -----------------------------------------------------------------------------------

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Long-poll for ``min(timeout, wait)`` seconds, rounded to whole seconds (below 0.5 s: one short poll)."""
        if self._closed or self._transport_closed():
            raise Closed(f"consumer of group {self.group} is closed")
        start = time.monotonic()
        lock = _receive_lock(self.queues.url)
        if not lock.acquire(timeout=max(0.0, timeout)):
            return []  # another member of the group in this process is receiving
        try:
            left = max(0.0, timeout - (time.monotonic() - start))
            seconds = int(min(left, float(self.options.wait)) + 0.5)
            reply = self.aws.sqs.receive_message(
                QueueUrl=self.queues.url,
                MaxNumberOfMessages=max(1, min(max_messages, BATCH)),
                WaitTimeSeconds=seconds,
                MessageAttributeNames=["All"],
                AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        except DRIVER_ERRORS as exc:
            if is_missing(exc):
                self._recreate()
                return []
            raise translate(exc, f"receiving for group {self.group}") from exc
        finally:
            lock.release()
        messages = reply.get("Messages", [])
        if not messages and seconds == 0:
            rest = timeout - (time.monotonic() - start)
            if rest > 0:
                time.sleep(min(rest, 1.0))  # a short poll found nothing: wait out the caller's timeout
        return [self._delivery(m) for m in messages]

    def _recreate(self) -> None:
        log.warning("sqs: the queue of group %s is missing; creating it again", self.group)
        try:
            self.queues = self.aws.group(self.group, refresh=True)
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"re-creating the queues of group {self.group}") from exc

    def _delivery(self, message: Mapping[str, Any]) -> Delivery:
        attributes = message.get("MessageAttributes") or {}
        token = Token(
            str(message["ReceiptHandle"]), str(message["MessageId"]), str(message.get("Body", "")), attributes
        )
        self._unsettled[token.message_id] = token
        try:
            attempt = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", 1))
        except ValueError:
            attempt = 1
        try:
            return Delivery(_wire.decode(message), attempt=attempt, token=token)
        except (ValueError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
            return Delivery(None, attempt=attempt, token=token, raw=token.body.encode("utf-8"), error=str(exc))

    # --- settling ------------------------------------------------------------------------------------

    def _batched(self, call: Callable[..., Any], what: str, entries: list[dict[str, Any]]) -> None:
        for i in range(0, len(entries), BATCH):
            chunk = entries[i : i + BATCH]
            try:
                reply = call(QueueUrl=self.queues.url, Entries=chunk)
            except DRIVER_ERRORS as exc:
                if is_missing(exc):
                    return  # the queue and its messages are gone: nothing left to settle
                raise translate(exc, f"{what} for group {self.group}") from exc
            for failed in reply.get("Failed", []):
                log.warning(
                    "sqs: %s for group %s failed: %s %s", what, self.group, failed.get("Code"), failed.get("Message")
                )

    def _forget(self, deliveries: Sequence[Delivery]) -> list[Token]:
        tokens = [_token(d) for d in deliveries]
        for token in tokens:
            current = self._unsettled.get(token.message_id)
            if current is not None and current.receipt == token.receipt:
                del self._unsettled[token.message_id]
        return tokens

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete the messages (DeleteMessageBatch, 10 per call)."""
        tokens = self._forget(deliveries)
        entries = [{"Id": str(i), "ReceiptHandle": t.receipt} for i, t in enumerate(tokens)]
        self._batched(self.aws.sqs.delete_message_batch, "deleting messages", entries)

    def _visibility(self, tokens: Sequence[Token], seconds: int, what: str) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": t.receipt, "VisibilityTimeout": seconds} for i, t in enumerate(tokens)
        ]
        self._batched(self.aws.sqs.change_message_visibility_batch, what, entries)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Make the messages visible again at once (visibility timeout 0)."""
        self._visibility(self._forget(deliveries), 0, "releasing messages")

    def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """Keep messages invisible for another ``seconds`` while their handlers run."""
        tokens = [t for t in (_token(d) for d in deliveries) if t.message_id in self._unsettled]
        self._visibility(tokens, min(43_200, max(1, int(seconds + 0.999))), "extending visibility")

    def dead_letter(self, delivery: Delivery, letter: DeadLetter) -> None:
        """Send the message as received to the group's dead-letter queue, with ``letter``; delete the original."""
        token = _token(delivery)
        info = {
            "id": letter.id or new_id(),
            "group": letter.group,
            "reason": letter.reason,
            "error": letter.error[:MAX_ERROR],
            "attempts": letter.attempts,
            "original_name": letter.original_name,
            "dead_at": (letter.dead_at or utcnow()).isoformat(),
        }
        attributes = {
            k: {f: v[f] for f in ("DataType", "StringValue", "BinaryValue") if f in v}
            for k, v in token.attributes.items()
            if k != _wire.ATTR_DEAD_LETTER
        }
        attributes = dict(list(attributes.items())[: MAX_ATTRIBUTES - 1])
        attributes[_wire.ATTR_DEAD_LETTER] = {"DataType": "String", "StringValue": orjson.dumps(info).decode()}
        request: dict[str, Any] = {
            "QueueUrl": self.queues.dlq_url,
            "MessageBody": token.body or " ",
            "MessageAttributes": attributes,
        }
        if self.options.fifo:
            key = delivery.envelope.key if delivery.envelope is not None else None
            request["MessageGroupId"] = key or "pubsubkit"
            request["MessageDeduplicationId"] = info["id"]
        try:
            self.aws.sqs.send_message(**request)
        except DRIVER_ERRORS as exc:
            if is_missing(exc):
                self._recreate()
            raise translate(exc, f"dead-lettering a message of group {self.group}") from exc
        self.ack([delivery])

    def close(self) -> None:
        """Leave the group: unsettled messages become visible to the other members at once."""
        if self._closed:
            return
        self._closed = True
        self.aws.left(self.group)
        tokens = list(self._unsettled.values())
        self._unsettled.clear()
        if tokens and not self._transport_closed():
            try:
                self._visibility(tokens, 0, "releasing messages on close")
            except Exception as exc:  # they come back when their visibility timeout runs out
                log.warning("sqs: group %s: could not release %d messages on close: %s", self.group, len(tokens), exc)
