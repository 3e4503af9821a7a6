"""The ``sqs://`` transport: publishes to the prefix's SNS topic in batches and opens group consumers."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pubsubkit.envelope import Envelope
from pubsubkit.errors import Closed, NotFound, PublishError
from pubsubkit.retry import Backoff, Retrier
from pubsubkit.transport import Channel, Consumer, DeadLetter, Transport
from pubsubkit_sqs import _wire
from pubsubkit_sqs._aws import Aws
from pubsubkit_sqs._errors import DRIVER_ERRORS, is_missing, refused, translate
from pubsubkit_sqs._letters import dead_letter_queues, letter_of, read_queue
from pubsubkit_sqs._options import CAPABILITIES, FIFO_CAPABILITIES, Options, parse

__all__ = ["CAPABILITIES", "FIFO_CAPABILITIES", "Refused", "SqsTransport"]


BATCH = 10  # the most entries SNS PublishBatch and the SQS batch calls take
BATCH_BYTES = 250_000  # under the 256 KiB limit of one batch request
ENTRY_RETRIES = 3  # attempts for a batch entry the service failed
ENTRY_BACKOFF = Backoff(initial=0.05, multiplier=2.0, max_delay=0.2)  # waits between them
KEYLESS_GROUP = "pubsubkit"  # MessageGroupId of messages without a key, on FIFO topics


class Refused(PublishError):
    """The service refused messages (too long, invalid): publishing them again cannot succeed."""

    retryable = False


Failure = tuple[str, str, bool]  # entry id, reason, whether the sender is at fault (a retry cannot help)


def _entry(env: Envelope, index: int, fifo: bool) -> dict[str, Any]:
    body, encoded = _wire.encode_body(env.payload)
    entry: dict[str, Any] = {
        "Id": str(index),
        "Message": body,
        "MessageAttributes": _wire.encode_attributes(env, encoded),
    }
    if fifo:
        entry["MessageGroupId"] = env.key or KEYLESS_GROUP
        entry["MessageDeduplicationId"] = env.id
    return entry


def _size(entry: dict[str, Any]) -> int:
    attrs = entry["MessageAttributes"]
    return len(entry["Message"].encode()) + sum(len(k) + len(v["StringValue"].encode()) + 6 for k, v in attrs.items())


class SqsTransport(Transport):
    """``sqs://?region=...&prefix=...``: see the package docstring and README for the options."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options: Options = parse(url, options)
        self.capabilities = FIFO_CAPABILITIES if self.options.fifo else CAPABILITIES
        self.aws = Aws(self.options)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closing = threading.Event()  # set by close(): ends the waits between entry retries

    # --- publishing ----------------------------------------------------------------------------------

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish every envelope to the topic: batches of 10, in concurrent lanes that keep per-key order."""
        if self._closing.is_set():
            raise Closed(f"{self.url} is closed")
        if not envelopes:
            return
        fifo = self.options.fifo
        lanes: list[list[dict[str, Any]]] = [[] for _ in range(self.options.publish_threads)]
        for i, env in enumerate(envelopes):
            lane = zlib.crc32(env.key.encode()) % len(lanes) if env.key is not None else 0 if fifo else i % len(lanes)
            lanes[lane].append(_entry(env, i, fifo))
        work = [lane for lane in lanes if lane]
        if len(work) == 1 or len(envelopes) <= BATCH:
            failures = [f for lane in work for f in self._send_lane(lane)]
        else:
            pool = self._executor()
            failures = [f for result in pool.map(self._send_lane, work) for f in result]
        if failures:
            failures.sort(key=lambda f: int(f[0]))
            shown = "; ".join(f"{envelopes[int(i)].id}: {why}" for i, why, _ in failures[:5])
            error = Refused if all(sender for _, _, sender in failures) else PublishError
            raise error(f"sqs: {len(failures)} of {len(envelopes)} messages were not published: {shown}")

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._closing.is_set():
                raise Closed(f"{self.url} is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.options.publish_threads, thread_name_prefix="pubsubkit-sqs-pub")
            return self._pool

    def _send_lane(self, entries: list[dict[str, Any]]) -> list[Failure]:
        """Send one lane's entries in order, batch by batch; return a failure for every entry not taken."""
        failed: list[Failure] = []
        batch: list[dict[str, Any]] = []
        size = 0
        for entry in entries:
            n = _size(entry)
            if batch and (len(batch) >= BATCH or size + n > BATCH_BYTES):
                failed += self._send_batch(batch)
                batch, size = [], 0
            batch.append(entry)
            size += n
        if batch:
            failed += self._send_batch(batch)
        return failed

    def _send_batch(self, batch: list[dict[str, Any]]) -> list[Failure]:
        """PublishBatch, retrying the entries the service failed; ConnectionLost when it cannot be reached."""
        pending = batch
        reasons: dict[str, str] = {}
        restored = False
        waits = Retrier(ENTRY_BACKOFF, self._closing)
        for _ in range(ENTRY_RETRIES):
            try:
                reply = self.aws.sns.publish_batch(TopicArn=self.aws.topic_arn(), PublishBatchRequestEntries=pending)
            except DRIVER_ERRORS as exc:
                if is_missing(exc) and not restored:
                    restored = True
                    try:
                        self.aws.restore()
                    except DRIVER_ERRORS as again:
                        raise translate(again, "re-creating the topic") from again
                    reply = {"Failed": [{"Id": e["Id"], "Code": "TopicRecreated"} for e in pending]}
                elif refused(exc):
                    raise Refused(f"sqs: the topic {self.options.topic_name} refused a batch: {exc}") from exc
                else:
                    raise translate(exc, f"publishing to topic {self.options.topic_name}") from exc
            failed = {f["Id"]: f for f in reply.get("Failed", [])}
            if not failed:
                return []
            reasons = {i: f"{f.get('Code')}: {f.get('Message', '')}".strip() for i, f in failed.items()}
            # A sender fault (a message SNS refuses) will not succeed on a retry; the rest may.
            retry = [e for e in pending if e["Id"] in failed and not failed[e["Id"]].get("SenderFault", False)]
            if len(retry) < len(failed):
                return [(i, reasons[i], bool(f.get("SenderFault", False))) for i, f in failed.items()]
            pending = retry
            if not waits.wait():
                break  # closed: what is left is reported failed
        return [(e["Id"], reasons.get(e["Id"], "failed"), False) for e in pending]

    # --- consuming -----------------------------------------------------------------------------------

    def lag(self, group: str) -> dict[str, int] | None:
        """The approximate number of messages visible in ``group``'s queue, as ``{queue: n}`` (SQS counts them
        approximately; the messages its members hold are not among them); ``None`` while the queue does not
        exist."""
        name = self.options.queue_name(group)
        try:
            url = self.aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            got = self.aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        except DRIVER_ERRORS as exc:
            if is_missing(exc):
                return None
            raise translate(exc, f"reading the lag of group {group}") from exc
        return {name: int(got["Attributes"]["ApproximateNumberOfMessages"])}

    def channel(self, name: str) -> Channel:
        """Every event on the prefix's SNS topic (a queue per group subscribed to it); the body is the payload and
        message attributes carry the rest."""
        w = _wire
        return Channel(
            address=self.options.topic_name,
            bindings={"sns": {"name": self.options.topic_name, "bindingVersion": "0.1.0"}},
            headers={
                w.ATTR_EVENT_NAME: "message attribute: the event's name",
                w.ATTR_ID: "message attribute: the message's id",
                w.ATTR_TIME: "message attribute: when the event occurred (ISO 8601)",
                w.ATTR_KEY: "message attribute: the ordering key",
                w.ATTR_CORRELATION: "message attribute: the correlation id",
                w.ATTR_HEADERS: "message attribute: the envelope's other headers, as JSON",
            },
        )

    def consumer(self, group: str, names: Collection[str] | None, *, history: bool = True) -> Consumer:
        from pubsubkit_sqs._consumer import SqsConsumer

        if self._closing.is_set():
            raise Closed(f"{self.url} is closed")
        self.options.queue_name(group)  # ConfigError for a name SQS cannot take, before any call
        try:
            queues = self.aws.group(group)
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"creating the queues of group {group}") from exc
        return SqsConsumer(self.aws, self.options, group, queues, self._closing.is_set)

    # --- dead letters --------------------------------------------------------------------------------

    def dead_letters(self, group: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The letters in the dead-letter queue of ``group``, or of every group of this prefix, oldest first."""
        if self._closing.is_set():
            raise Closed(f"{self.url} is closed")
        letters: list[DeadLetter] = []
        try:
            for g, url in sorted(dead_letter_queues(self.aws.sqs, self.options, group).items()):
                letters += [letter_of(g, m) for m in read_queue(self.aws.sqs, url, limit=limit)]
        except DRIVER_ERRORS as exc:
            raise translate(exc, "reading dead letters") from exc
        letters.sort(key=lambda x: x.dead_at.timestamp() if x.dead_at is not None else 0.0)
        return letters[:limit]

    def replay_dead_letter(self, letter_id: str) -> None:
        """Publish the original message to the topic again (every group gets it) and delete the letter."""
        group, sep, message_id = letter_id.rpartition("/")
        if not sep or not group:
            raise NotFound(f"dead letter {letter_id!r} does not exist (ids look like <group>/<message id>)")
        try:
            queues = dead_letter_queues(self.aws.sqs, self.options, group)
            if group not in queues:
                raise NotFound(f"dead letter {letter_id}: group {group} has no dead-letter queue")
            [message] = read_queue(self.aws.sqs, queues[group], limit=1_000_000, want=message_id)
        except DRIVER_ERRORS as exc:
            raise translate(exc, "reading dead letters") from exc
        letter = letter_of(group, message)
        if letter.envelope is None:
            raise NotFound(f"dead letter {letter_id} has no decodable message to replay")
        self.publish([letter.envelope])
        try:
            self.aws.sqs.delete_message(QueueUrl=queues[group], ReceiptHandle=message["ReceiptHandle"])
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"removing the replayed dead letter {letter_id}") from exc

    def ping(self) -> None:
        try:
            self.aws.sqs.list_queues(QueueNamePrefix=self.options.prefix, MaxResults=1)
        except DRIVER_ERRORS as exc:
            raise translate(exc, "ping") from exc

    def close(self) -> None:
        with self._pool_lock:
            self._closing.set()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.aws.close()
