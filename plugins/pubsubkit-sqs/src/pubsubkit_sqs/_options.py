"""The options of ``sqs://``: URL query parameters or keyword arguments of ``open_broker`` (a keyword wins)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.options import boolean, option, optional, read_options, text, whole
from pubsubkit.transport import BrokerCapabilities

__all__ = ["CAPABILITIES", "FIFO_CAPABILITIES", "Options", "parse"]

CAPABILITIES = BrokerCapabilities(
    ordered=False,  # standard queues deliver at least once, in no promised order
    persistent=True,  # SQS keeps a message until it is deleted or its retention runs out
    consumer_groups=True,  # a queue per group, each subscribed to the topic
    replay=False,  # a new group's queue gets what is published after it subscribed
    multi_process=True,
    dead_letter_store=True,  # a dead-letter queue per group, listed and replayed through the transport
    restartable=False,
)
FIFO_CAPABILITIES = BrokerCapabilities(
    ordered=True,  # fifo=true: MessageGroupId is the key, and SQS holds a group while a message is in flight
    persistent=True,
    consumer_groups=True,
    replay=False,
    multi_process=True,
    dead_letter_store=True,
    restartable=False,
)

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _prefix(backend: str, name: str, value: Any) -> str:
    prefix = str(value)
    if not _NAME.match(prefix):
        raise ConfigError(f"{backend} option {name}={prefix!r}: use letters, digits, '-' and '_' only")
    if len(prefix) > 60:
        raise ConfigError(f"{backend} option {name}={prefix!r}: at most 60 characters")
    return prefix


@attrs.frozen
class Options:
    """Parsed ``sqs://`` options; see the README for their meaning."""

    region: str | None = option(None, parse=optional(text))
    endpoint_url: str | None = option(None, parse=optional(text))
    prefix: str = option("events", parse=_prefix)
    fifo: bool = option(False, parse=boolean)
    wait: int = option(10, parse=whole(0, 20))
    visibility: int = option(30, parse=whole(1, 43_200))
    max_receive_count: int = option(25, parse=whole(0, 1000))
    publish_threads: int = option(4, parse=whole(1, 64))

    @property
    def suffix(self) -> str:
        return ".fifo" if self.fifo else ""

    def queue_name(self, group: str, dead: bool = False) -> str:
        """The queue of consumer ``group`` (or its dead-letter queue): ``<prefix>-<group>[-dlq][.fifo]``."""
        if not _NAME.match(group):
            raise ConfigError(f"sqs consumer group {group!r}: use letters, digits, '-' and '_' only")
        if group.endswith("-dlq"):
            raise ConfigError(f"sqs consumer group {group!r}: a name ending in -dlq is taken by dead-letter queues")
        name = f"{self.prefix}-{group}{'-dlq' if dead else ''}{self.suffix}"
        if len(name) > 80:
            raise ConfigError(f"sqs queue name {name!r} is longer than 80 characters: shorten the prefix or group")
        return name

    @property
    def topic_name(self) -> str:
        return f"{self.prefix}{self.suffix}"


def parse(url: str, options: Mapping[str, Any]) -> Options:
    """Options of ``url`` (``sqs://?region=...&prefix=...``) merged with keyword ``options``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqs":
        raise ConfigError(f"{url!r}: not an sqs:// URL")
    if parts.netloc or parts.path.strip("/"):
        raise ConfigError(f"{url!r}: put everything in the query, e.g. sqs://?region=us-east-1&prefix=events")
    got = read_options("sqs", Options, parts.query, options)
    if got.endpoint_url is None and os.environ.get("AWS_ENDPOINT_URL"):
        got = attrs.evolve(got, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    return got
