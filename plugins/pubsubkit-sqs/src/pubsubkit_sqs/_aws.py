"""The AWS side: clients, and creating the topic, queues and subscriptions.

Layout for ``prefix=events``: an SNS topic ``events``; per consumer group ``g`` an SQS queue ``events-g``
subscribed to the topic with raw message delivery, and its dead-letter queue ``events-g-dlq`` (the queue's
RedrivePolicy points at it). With ``fifo=true`` every name ends in ``.fifo``.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import boto3
import orjson
from botocore.config import Config

from pubsubkit.errors import ConfigError
from pubsubkit_sqs._options import Options

__all__ = ["Aws", "GroupQueues"]

# Groups with open consumers in this process, per topic (with their count of consumers), so that any transport
# publishing to the topic can restore their queues and subscriptions.
_PROCESS_GROUPS: dict[tuple[str | None, str | None, str], Counter[str]] = {}
_PROCESS_LOCK = threading.Lock()


class GroupQueues:
    """The URLs of one consumer group's queue and dead-letter queue."""

    def __init__(self, url: str, dlq_url: str) -> None:
        self.url = url
        self.dlq_url = dlq_url


class Aws:
    """SNS and SQS clients of one transport, and the idempotent creation of what it uses."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._sqs: Any = None
        self._sns: Any = None
        self._topic_arn: str | None = None
        self._groups: dict[str, GroupQueues] = {}

    def _client(self, service: str) -> Any:
        session = boto3.session.Session()
        region = self.options.region or session.region_name
        if not region:
            raise ConfigError("sqs: no AWS region: give region=... in the URL or set AWS_DEFAULT_REGION")
        config = Config(
            retries={"total_max_attempts": 3, "mode": "standard"},
            connect_timeout=3,
            read_timeout=self.options.wait + 15,
            max_pool_connections=64,
        )
        client = session.client(service, region_name=region, endpoint_url=self.options.endpoint_url, config=config)
        # botocore makes the exception classes on first access, unlocked: two threads there at once would get
        # two sets of classes, and an ``except client.exceptions.X`` of one would miss the other's X
        client.exceptions  # noqa: B018
        return client

    @property
    def sqs(self) -> Any:
        with self._lock:
            if self._sqs is None:
                self._sqs = self._client("sqs")
            return self._sqs

    @property
    def sns(self) -> Any:
        with self._lock:
            if self._sns is None:
                self._sns = self._client("sns")
            return self._sns

    def close(self) -> None:
        with self._lock:
            for client in (self._sqs, self._sns):
                if client is not None:
                    client.close()
            self._sqs = self._sns = None

    # --- creation ------------------------------------------------------------------------------------

    def topic_arn(self, refresh: bool = False) -> str:
        """The ARN of the prefix's topic, created if needed (``refresh``: create again, it went missing)."""
        if self._topic_arn is not None and not refresh:
            return self._topic_arn
        attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "false"} if self.options.fifo else {}
        arn = str(self.sns.create_topic(Name=self.options.topic_name, Attributes=attributes)["TopicArn"])
        self._topic_arn = arn
        return arn

    @property
    def _process_key(self) -> tuple[str | None, str | None, str]:
        return (self.options.endpoint_url, self.options.region, self.options.topic_name)

    def known_groups(self) -> list[str]:
        """The groups with an open consumer in this process, on any transport to the same topic."""
        with _PROCESS_LOCK:
            return sorted(_PROCESS_GROUPS.get(self._process_key, Counter()))

    def joined(self, group: str) -> None:
        """A consumer of ``group`` opened in this process."""
        with _PROCESS_LOCK:
            _PROCESS_GROUPS.setdefault(self._process_key, Counter())[group] += 1

    def left(self, group: str) -> None:
        """A consumer of ``group`` closed."""
        with _PROCESS_LOCK:
            groups = _PROCESS_GROUPS.get(self._process_key)
            if groups is not None:
                groups[group] -= 1
                if groups[group] <= 0:
                    del groups[group]

    def group(self, group: str, refresh: bool = False) -> GroupQueues:
        """The queues of ``group``, created and subscribed to the topic if needed."""
        with self._lock:
            known = self._groups.get(group)
        if known is not None and not refresh:
            return known
        opts = self.options
        fifo = {"FifoQueue": "true"} if opts.fifo else {}
        dlq_url = str(self.sqs.create_queue(QueueName=opts.queue_name(group, dead=True), Attributes=fifo)["QueueUrl"])
        dlq_arn = self.queue_arn(dlq_url)
        self.sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": "1209600"})
        url = str(self.sqs.create_queue(QueueName=opts.queue_name(group), Attributes=fifo)["QueueUrl"])
        arn = self.queue_arn(url)
        topic = self.topic_arn(refresh=refresh)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                }
            ],
        }
        attributes = {"VisibilityTimeout": str(opts.visibility), "Policy": orjson.dumps(policy).decode()}
        if opts.max_receive_count:
            redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": opts.max_receive_count}
            attributes["RedrivePolicy"] = orjson.dumps(redrive).decode()
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        self.sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )
        queues = GroupQueues(url, dlq_url)
        with self._lock:
            self._groups[group] = queues
        return queues

    def queue_arn(self, url: str) -> str:
        got = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(got["Attributes"]["QueueArn"])

    def restore(self) -> None:
        """After the topic went missing: create it again, with the queues and subscriptions of known groups."""
        self.topic_arn(refresh=True)
        for group in self.known_groups():
            self.group(group, refresh=True)
