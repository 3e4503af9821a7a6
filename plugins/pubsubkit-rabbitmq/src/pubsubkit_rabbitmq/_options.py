"""The connection URL and the options of the RabbitMQ backend.

The URL is pika's ``URLParameters`` URL (``amqp://user:password@host:port/vhost?heartbeat=30``) whose query may
also carry pubsubkit's own options (``exchange=events&queue_type=quorum``); keyword options of ``open_broker``
win over the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import attrs

from pubsubkit.errors import ConfigError, PublishError
from pubsubkit.options import boolean, build_options, one_of, option, optional, real, split_options, whole
from pubsubkit.plugin import redact
from pubsubkit.transport import BrokerCapabilities

if TYPE_CHECKING:
    import pika

__all__ = ["CAPABILITIES", "DEFAULT_HEARTBEAT", "OPTIONS", "Settings", "Unroutable", "parse"]

CAPABILITIES = BrokerCapabilities(
    ordered=False,  # the members of a group compete for its queue: messages of one key may overtake
    persistent=True,  # durable exchanges and queues, persistent messages, publisher confirms
    consumer_groups=True,  # a queue per group, bound to the exchange
    replay=False,  # a group's queue gets what is published after it was declared
    multi_process=True,
    dead_letter_store=True,  # a dead-letter queue per group, listed and replayed through the transport
    restartable=True,
)


class Unroutable(PublishError):
    """The broker returned a message because no queue is bound for its routing key (``mandatory``).

    Publishing it again would not help until a queue is bound, so the emitter does not retry it.
    """

    retryable = False


#: Seconds of pika's heartbeat unless the URL gives ``heartbeat`` (RabbitMQ advises 5 to 20): a broker that stops
#: answering (hung, or the network stalled) is noticed within two such intervals plus 10 s and the connection
#: given up. Left to the broker, RabbitMQ proposes 60 s: a stall went unnoticed for up to 130 s, and a consumer
#: leaving during one waited that long to close.
DEFAULT_HEARTBEAT = 15

#: pubsubkit's own options and what they mean (pika's query parameters pass through to pika).
OPTIONS: Mapping[str, str] = {
    "exchange": "durable topic exchange events are published to (default events)",
    "queue_type": "quorum (default) or classic: the type of the queues of the consumer groups",
    "prefetch": "unacknowledged messages the broker sends one consumer ahead (default 100)",
    "mandatory": "true (default): the broker returns a message no queue is bound for; false: drops it silently",
    "unroutable": "warn (default): a returned message is logged, the publish succeeds; fail: it raises Unroutable",
    "confirm_timeout": "seconds to wait for the broker's confirms of one publish (default 30)",
    "missing_id": "the id of a message without a message_id property: fresh (default, a new id per delivery) or"
    " hash (derived from its name, headers and body)",
    "single_active": "true: one member of a group consumes at a time, the others stand by (per-key order)",
    "queue_expires": "seconds after which the broker deletes a group's queues once unused (default: never)",
}


def _exchange(backend: str, name: str, value: Any) -> str:
    exchange = str(value)
    if not exchange or exchange.startswith("amq.") or len(exchange) > 200:
        raise ConfigError(f"{backend} option {name}={exchange!r}: a non-empty name not starting with amq.")
    return exchange


@attrs.frozen
class Settings:
    """Everything one ``amqp://`` URL and its options say: pika's parameters and this backend's options."""

    url: str
    params: pika.URLParameters
    exchange: str = option("events", parse=_exchange)
    queue_type: str = option("quorum", parse=one_of("quorum", "classic"))
    prefetch: int = option(100, parse=whole(1))
    mandatory: bool = option(True, parse=boolean)
    unroutable: str = option("warn", parse=one_of("warn", "fail"))
    confirm_timeout: float = option(30.0, parse=real(0.001))
    missing_id: str = option("fresh", parse=one_of("fresh", "hash"))
    queue_expires: float | None = option(None, parse=optional(real(1.0)))
    single_active: bool = option(False, parse=boolean)

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dlx"

    def queue(self, group: str) -> str:
        """The queue of consumer ``group``."""
        return f"{self.exchange}.{group}"

    def dead_letter_queue(self, group: str) -> str:
        """The queue the dead letters of ``group`` are kept in."""
        return f"{self.exchange}.{group}.dlq"

    def queue_arguments(self, group: str) -> dict[str, Any]:
        """Arguments of the queue of ``group``: its type and where the broker itself dead-letters to."""
        args = {
            **self.dead_letter_queue_arguments(),
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": group,
        }
        if self.single_active:
            args["x-single-active-consumer"] = True
        return args

    def dead_letter_queue_arguments(self) -> dict[str, Any]:
        """Arguments of a dead-letter queue: its type, and its expiry when ``queue_expires`` is set."""
        args: dict[str, Any] = {"x-queue-type": self.queue_type}
        if self.queue_expires is not None:
            args["x-expires"] = int(self.queue_expires * 1000)
        return args


def parse(url: str, options: Mapping[str, Any]) -> Settings:
    """Split ``url`` into pika's parameters and pubsubkit's options; raise ConfigError naming a wrong one.

    A query parameter that is not one of :data:`OPTIONS` is pika's; a keyword option must be one of them.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ConfigError(f"{redact(url)}: not an amqp:// or amqps:// URL")
    split = split_options(
        "rabbitmq",
        OPTIONS,
        parts.query,
        options,
        passthrough=lambda name: True,
        keyword_passthrough=False,
        driver="a pika URL parameter in the query",
    )
    pika_url = urlunsplit(parts._replace(query=urlencode(split.query_rest)))
    import pika  # here, not at the top: loading the plugin must not load the driver

    try:
        params = pika.URLParameters(pika_url)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{redact(url)}: {exc} (pubsubkit options are {', '.join(sorted(OPTIONS))}; the rest is pika's)"
        ) from None
    if "heartbeat" not in dict(split.query_rest):
        params.heartbeat = DEFAULT_HEARTBEAT
    return build_options("rabbitmq", Settings, split.ours, {"url": url, "params": params})
