"""Parsing ``kafka://host:port[,host:port]?options`` into the plugin's settings and librdkafka configurations."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.options import build_options, option, option_names, real, split_options, whole
from pubsubkit.transport import BrokerCapabilities

__all__ = ["CAPABILITIES", "KafkaSettings", "parse_url"]

#: librdkafka's own log lines (connection failures are logged there at level ERROR while a broker is away).
log = logging.getLogger("pubsubkit.kafka.librdkafka")

CAPABILITIES = BrokerCapabilities(
    ordered=True,  # one key, one partition, one member of the group at a time, in offset order
    persistent=True,  # a Kafka log survives broker restarts (replicated, on disk)
    consumer_groups=True,
    replay=True,  # a new group reads the log from the start (auto.offset.reset=earliest)
    multi_process=True,
    dead_letter_store=True,  # the dead-letter topic, read from its start; a replay appends a marker
    restartable=True,
)

#: librdkafka properties that only a consumer understands; the others go to producers (and admin clients).
_CONSUMER_ONLY = (
    "group.",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "max.poll.interval.ms",
    "fetch.",
    "partition.assignment.strategy",
    "isolation.level",
    "enable.partition.eof",
    "queued.",
    "check.crcs",
    "allow.auto.create.topics",
    "coordinator.query.interval.ms",
)
_PRODUCER_ONLY = (
    "acks",
    "request.required.acks",
    "linger.ms",
    "queue.buffering.",
    "batch.",
    "compression.",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "enable.idempotence",
    "retries",
    "message.send.max.retries",
    "retry.backoff",
    "partitioner",
    "sticky.partitioning.linger.ms",
    "request.timeout.ms",
    "enable.gapless.guarantee",
)

#: What pubsubkit sets unless the URL says otherwise.
_COMMON_DEFAULTS: Mapping[str, Any] = {
    "reconnect.backoff.ms": 100,
    "reconnect.backoff.max.ms": 1000,
}
_PRODUCER_DEFAULTS: Mapping[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "message.timeout.ms": 30000,
    # keyless messages spread over the partitions one by one, so that every member of a group gets a share
    "sticky.partitioning.linger.ms": 0,
}
_CONSUMER_DEFAULTS: Mapping[str, Any] = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "allow.auto.create.topics": False,
}
#: Properties pubsubkit owns: changing them would break its delivery guarantees.
_FIXED = {"group.id", "enable.auto.commit", "enable.idempotence", "bootstrap.servers", "transactional.id"}


def _topic(backend: str, name: str, value: Any) -> str:
    topic = str(value)
    if not topic or len(topic) > 249 or not all(c.isalnum() or c in "._-" for c in topic):
        raise ConfigError(f"{backend} option {name}={topic!r}: use letters, digits, '.', '_' and '-' (at most 249)")
    return topic


@attrs.frozen
class KafkaSettings:
    """Everything one ``kafka://`` URL says.

    :ivar bootstrap: ``host:port[,host:port]`` of the bootstrap brokers.
    :ivar topic: the topic every event goes to (the Go MyEvents used ``events``).
    :ivar dead_letter_topic: where dead letters go (default ``<topic>.dlq``).
    :ivar partitions: partition count of the topics this backend creates.
    :ivar replication_factor: replication factor of the topics this backend creates.
    :ivar commit_interval: seconds between offset commits of a consumer (also on revoke and close).
    :ivar librdkafka: the librdkafka properties given in the URL (names with a dot).
    """

    bootstrap: str
    topic: str = option("events", parse=_topic)
    dead_letter_topic: str = option("")
    partitions: int = option(3, parse=whole(1))
    replication_factor: int = option(1, parse=whole(1))
    commit_interval: float = option(0.5, parse=real(0.0))
    group_prefix: str = option("")
    librdkafka: Mapping[str, Any] = attrs.field(factory=dict)

    def _split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        consumer: dict[str, Any] = {}
        producer: dict[str, Any] = {}
        for key, value in self.librdkafka.items():
            if key.startswith(_CONSUMER_ONLY):
                consumer[key] = value
            elif key.startswith(_PRODUCER_ONLY):
                producer[key] = value
            else:
                consumer[key] = value
                producer[key] = value
        return consumer, producer

    def common_config(self) -> dict[str, Any]:
        """Configuration of an admin client: the bootstrap servers and the shared properties."""
        _, producer = self._split()
        shared = {k: v for k, v in producer.items() if not k.startswith(_PRODUCER_ONLY)}
        return {**_COMMON_DEFAULTS, **shared, "bootstrap.servers": self.bootstrap, "logger": log}

    def producer_config(self) -> dict[str, Any]:
        _, producer = self._split()
        return {
            **_COMMON_DEFAULTS,
            **_PRODUCER_DEFAULTS,
            **producer,
            "bootstrap.servers": self.bootstrap,
            "enable.idempotence": True,
            "logger": log,
        }

    def consumer_config(self, group: str, client_id: str) -> dict[str, Any]:
        consumer, _ = self._split()
        return {
            **_COMMON_DEFAULTS,
            **_CONSUMER_DEFAULTS,
            **consumer,
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group_prefix + group,
            "client.id": client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "logger": log,
        }


def parse_url(url: str, options: Mapping[str, Any]) -> KafkaSettings:
    """``kafka://host:port[,host:port]?topic=events&partitions=3&session.timeout.ms=6000`` -> settings.

    Keyword ``options`` (from ``open_broker``) override the query. Names with a dot are librdkafka properties;
    the others are this backend's own (see the README); an unknown name raises :class:`ConfigError`.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "kafka":
        raise ConfigError(f"{url!r}: not a kafka:// URL")
    bootstrap = parts.netloc.rsplit("@", 1)[-1]
    if not bootstrap:
        raise ConfigError(f"{url!r}: no broker address; e.g. kafka://localhost:9092")
    if parts.path not in ("", "/"):
        raise ConfigError(f"{url!r}: a kafka URL has no path; name the topic with ?topic=NAME")
    split = split_options(
        "kafka",
        option_names(KafkaSettings),
        parts.query,
        options,
        passthrough=lambda name: "." in name,
        driver="a librdkafka property (a.b)",
    )
    librdkafka = split.rest
    fixed = sorted(librdkafka.keys() & _FIXED)
    if fixed:
        raise ConfigError(f"kafka option {fixed[0]} is set by pubsubkit and cannot be changed")
    ours = {"topic": "events", **split.ours}  # the default topic is checked too
    settings = build_options("kafka", KafkaSettings, ours, {"bootstrap": bootstrap, "librdkafka": librdkafka})
    if not settings.dead_letter_topic:
        settings = attrs.evolve(settings, dead_letter_topic=f"{settings.topic}.dlq")
    return settings
