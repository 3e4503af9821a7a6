"""The connection URL and the options of the RabbitMQ backend.

The URL is pika's ``URLParameters`` URL (``amqp://user:password@host:port/vhost?heartbeat=30``) whose query may
also carry pubsubkit's own options (``exchange=events&queue_type=quorum``); keyword options of ``open_broker``
win over the query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from pubsubkit.errors import ConfigError, PublishError
from pubsubkit.options import boolean, build_options, one_of, option, optional, real, split_options, whole
from pubsubkit.plugin import redact
from pubsubkit.transport import BrokerCapabilities

if TYPE_CHECKING:
    import pika

__all__ = [
    "CAPABILITIES",
    "DEFAULT_HEARTBEAT",
    "GROUP_OPTIONS",
    "OPTIONS",
    "GroupSettings",
    "QueueMismatch",
    "Settings",
    "Share",
    "Unroutable",
    "parse",
]

CAPABILITIES = BrokerCapabilities(
    ordered=False,  # the members of a group compete for its queue: messages of one key may overtake
    persistent=True,  # durable exchanges and queues, persistent messages, publisher confirms
    consumer_groups=True,  # a queue per group, bound to the exchange
    replay=True,  # the archive (a stream queue bound to the exchange) is read by a new or a reset group
    multi_process=True,
    dead_letter_store=True,  # a dead-letter queue per group, listed and replayed through the transport
    restartable=True,
)


class Unroutable(PublishError):
    """The broker returned a message because no queue is bound for its routing key (``mandatory``).

    Publishing it again would not help until a queue is bound, so the emitter does not retry it.
    """

    retryable = False


class QueueMismatch(ConfigError):
    """A queue of a group exists with other arguments than the group declares it with: the message names the
    queue, the argument and the option that fixes it. Nothing was changed."""


#: Seconds of pika's heartbeat unless the URL gives ``heartbeat`` (RabbitMQ advises 5 to 20): a broker that stops
#: answering (hung, or the network stalled) is noticed within two such intervals plus 10 s and the connection
#: given up. Left to the broker, RabbitMQ proposes 60 s: a stall went unnoticed for up to 130 s, and a consumer
#: leaving during one waited that long to close.
DEFAULT_HEARTBEAT = 15

#: pubsubkit's own options and what they mean (pika's query parameters pass through to pika).
OPTIONS: Mapping[str, str] = {
    "exchange": "durable topic exchange events are published to (default events)",
    "queue_type": "quorum (default) or classic: the type of the queues of the consumer groups",
    "prefetch": "unacknowledged messages the broker sends one consumer ahead (default 100; a listener's"
    " max_in_flight if less)",
    "mandatory": "true (default): the broker returns a message no queue is bound for; false: drops it silently",
    "unroutable": "warn (default): a returned message is logged, the publish succeeds; fail: it raises Unroutable",
    "confirm_timeout": "seconds to wait for the broker's confirms of one publish (default 30)",
    "missing_id": "the id of a message without a message_id property: fresh (default, a new id per delivery) or"
    " hash (derived from its name, headers and body)",
    "single_active": "true: one member of a group consumes at a time, the others stand by (per-key order)",
    "queue_expires": "seconds after which the broker deletes a group's queues once unused (default: never)",
    "archive": "true (default): every message is also kept in the stream queue <exchange>.archive, which a new"
    " group (or one moved back by pubsubkit replay) reads before its own queue; false: no history",
    "archive_max_age": "how long the archive keeps messages, as RabbitMQ's x-max-age: a number and one of"
    " Y M D h m s (default 7D)",
    "archive_max_bytes": "bytes the archive keeps at most (default: no limit but the age); the oldest segment"
    " goes first",
}

#: Options of one consumer group, given as ``<option>.<group>`` (``queue.booking=booking``).
GROUP_OPTIONS: Mapping[str, str] = {
    "queue": "the name of the group's queue (default <exchange>.<group>)",
    "queue_type": "quorum or classic: the type of the group's queue (default: the queue_type option)",
    "share": "<queue>:<name>,<name>...: the group takes these names from <queue>, a classic durable queue"
    " without arguments (as other AMQP applications declare theirs), in competition with that queue's other"
    " consumers; its other names stay on its own queue",
}

_QUEUE_TYPE = one_of("quorum", "classic")
_AGE = re.compile(r"[1-9][0-9]*[YMDhms]")


def _age(backend: str, name: str, value: Any) -> str:
    age = str(value).strip()
    if not _AGE.fullmatch(age):
        raise ConfigError(f"{backend} option {name}={value!r}: a number and one of Y M D h m s, as in 7D or 12h")
    return age


@attrs.frozen
class Share:
    """A queue another application declares too, and the names a group takes from it."""

    queue: str
    names: frozenset[str]


@attrs.frozen
class GroupSettings:
    """The options of one consumer group (``None``: the broker-wide default)."""

    queue: str | None = None
    queue_type: str | None = None
    share: Share | None = None


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
    archive: bool = option(True, parse=boolean)
    archive_max_age: str = option("7D", parse=_age)
    archive_max_bytes: int | None = option(None, parse=optional(whole(1)))
    groups: Mapping[str, GroupSettings] = attrs.field(factory=dict)

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dlx"

    def group(self, group: str) -> GroupSettings:
        """The options given for ``group`` (:data:`GROUP_OPTIONS`)."""
        return self.groups.get(group) or GroupSettings()

    def queue(self, group: str) -> str:
        """The queue of consumer ``group``: ``queue.<group>``, or ``<exchange>.<group>``."""
        return self.group(group).queue or f"{self.exchange}.{group}"

    def queue_type_of(self, group: str) -> str:
        """The type of ``group``'s queue: ``queue_type.<group>``, or ``queue_type``."""
        return self.group(group).queue_type or self.queue_type

    @property
    def archive_queue(self) -> str:
        """The stream queue every message is kept in (``archive``), bound to the exchange for every name."""
        return f"{self.exchange}.archive"

    def archive_arguments(self) -> dict[str, Any]:
        """Arguments of the archive: a stream queue and its retention."""
        args: dict[str, Any] = {"x-queue-type": "stream", "x-max-age": self.archive_max_age}
        if self.archive_max_bytes is not None:
            args["x-max-length-bytes"] = self.archive_max_bytes
            # retention drops whole segments: keep them small enough for the limit to bite
            args["x-stream-max-segment-size-bytes"] = max(1_000_000, min(500_000_000, self.archive_max_bytes // 10))
        return args

    @property
    def groups_queue(self) -> str:
        """The queue that lists the groups that joined (AMQP cannot list queues), for the dead-letter listing."""
        return f"{self.exchange}.groups"

    def catch_up_queue(self, group: str) -> str:
        """The queue that holds where ``group`` is in the archive while it reads it (it exists only then)."""
        return f"{self.exchange}.{group}.catchup"

    def dead_letter_queue(self, group: str) -> str:
        """The queue the dead letters of ``group`` are kept in."""
        return f"{self.exchange}.{group}.dlq"

    def queue_arguments(self, group: str, queue_type: str | None = None) -> dict[str, Any]:
        """Arguments of the queue of ``group``: its type and, for a quorum queue, where the broker dead-letters to.

        A quorum queue dead-letters a message by itself once its delivery limit is reached; a classic queue never
        does (the consumer moves a dead letter itself), so it carries no dead-letter arguments and is declared
        like the classic queue any AMQP client declares.
        """
        queue_type = queue_type or self.queue_type_of(group)
        args: dict[str, Any] = {"x-queue-type": queue_type}
        if queue_type == "quorum":
            args["x-dead-letter-exchange"] = self.dead_letter_exchange
            args["x-dead-letter-routing-key"] = group
        if self.queue_expires is not None:
            args["x-expires"] = int(self.queue_expires * 1000)
        if self.single_active:
            args["x-single-active-consumer"] = True
        return args

    def dead_letter_queue_arguments(self) -> dict[str, Any]:
        """Arguments of a dead-letter queue: its type, and its expiry when ``queue_expires`` is set."""
        args: dict[str, Any] = {"x-queue-type": self.queue_type}
        if self.queue_expires is not None:
            args["x-expires"] = int(self.queue_expires * 1000)
        return args


def _share(group: str, value: Any) -> Share:
    queue, sep, names = str(value).partition(":")
    listed = frozenset(n.strip() for n in names.split(",") if n.strip())
    if not sep or not queue.strip() or not listed:
        raise ConfigError(
            f"rabbitmq option share.{group}={value!r}: use <queue>:<name>[,<name>...], e.g."
            f" share.{group}=booking:eventCreated"
        )
    return Share(queue.strip(), listed)


def _group_options(query: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, GroupSettings]]:
    """Take the ``<option>.<group>`` options out of ``query`` and ``options`` (a keyword wins)."""
    given: dict[str, dict[str, Any]] = {}
    rest_query: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        name, dot, group = key.partition(".")
        if dot and name in GROUP_OPTIONS:
            given.setdefault(group, {})[name] = value
        else:
            rest_query.append((key, value))
    rest_options: dict[str, Any] = {}
    for key, value in options.items():
        name, dot, group = key.partition(".")
        if dot and name in GROUP_OPTIONS:
            given.setdefault(group, {})[name] = value
        else:
            rest_options[key] = value
    groups: dict[str, GroupSettings] = {}
    for group, values in given.items():
        if not group:
            raise ConfigError(f"rabbitmq options {', '.join(sorted(values))}: name the group, as in queue.booking=")
        queue = values.get("queue")
        if queue is not None and not str(queue).strip():
            raise ConfigError(f"rabbitmq option queue.{group}='': give the name of the group's queue")
        queue_type = values.get("queue_type")
        groups[group] = GroupSettings(
            queue=None if queue is None else str(queue).strip(),
            queue_type=None if queue_type is None else _QUEUE_TYPE("rabbitmq", f"queue_type.{group}", queue_type),
            share=None if "share" not in values else _share(group, values["share"]),
        )
    return urlencode(rest_query), rest_options, groups


def parse(url: str, options: Mapping[str, Any]) -> Settings:
    """Split ``url`` into pika's parameters and pubsubkit's options; raise ConfigError naming a wrong one.

    A query parameter that is not one of :data:`OPTIONS` or :data:`GROUP_OPTIONS` (``<option>.<group>``) is
    pika's; a keyword option must be one of them.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ConfigError(f"{redact(url)}: not an amqp:// or amqps:// URL")
    query, options, groups = _group_options(parts.query, options)
    split = split_options(
        "rabbitmq",
        OPTIONS,
        query,
        options,
        passthrough=lambda name: True,
        keyword_passthrough=False,
        driver="an option of one group (queue.<group>, queue_type.<group>, share.<group>), or a pika URL parameter"
        " in the query",
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
    return build_options("rabbitmq", Settings, split.ours, {"url": url, "params": params, "groups": groups})
