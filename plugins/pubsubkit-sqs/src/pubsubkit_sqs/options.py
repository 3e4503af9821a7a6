"""The options of ``sqs://``: URL query parameters or keyword arguments of ``open_broker`` (a keyword wins)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.options import flag, number
from pubsubkit.transport import BrokerCapabilities

__all__ = ["CAPABILITIES", "FIFO_CAPABILITIES", "Options", "parse"]

CAPABILITIES = BrokerCapabilities(
    ordered=False,  # standard queues deliver at least once, in no promised order
    persistent=True,  # SQS keeps a message until it is deleted or its retention runs out
    consumer_groups=True,  # a queue per group, each subscribed to the topic
    replay=False,  # a new group's queue gets what is published after it subscribed
    multi_process=True,
    dead_letter_store=False,  # a dead-letter queue per group, inspected and redriven with AWS tools
    restartable=False,
)
FIFO_CAPABILITIES = BrokerCapabilities(
    ordered=True,  # fifo=true: MessageGroupId is the key, and SQS holds a group while a message is in flight
    persistent=True,
    consumer_groups=True,
    replay=False,
    multi_process=True,
    dead_letter_store=False,
    restartable=False,
)

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
KNOWN = (
    "region",
    "endpoint_url",
    "prefix",
    "fifo",
    "wait",
    "visibility",
    "max_receive_count",
    "publish_threads",
)


@attrs.frozen
class Options:
    """Parsed ``sqs://`` options; see the README for their meaning."""

    region: str | None = None
    endpoint_url: str | None = None
    prefix: str = "events"
    fifo: bool = False
    wait: int = 10
    visibility: int = 30
    max_receive_count: int = 25
    publish_threads: int = 4

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


def _bool(name: str, value: Any) -> bool:
    return flag("sqs", name, value)


def _int(name: str, value: Any, low: int, high: int) -> int:
    return number("sqs", name, value, int, low, high)


def parse(url: str, options: Mapping[str, Any]) -> Options:
    """Options of ``url`` (``sqs://?region=...&prefix=...``) merged with keyword ``options``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqs":
        raise ConfigError(f"{url!r}: not an sqs:// URL")
    if parts.netloc or parts.path.strip("/"):
        raise ConfigError(f"{url!r}: put everything in the query, e.g. sqs://?region=us-east-1&prefix=events")
    merged: dict[str, Any] = dict(parse_qsl(parts.query))
    merged.update(options)
    unknown = sorted(set(merged) - set(KNOWN))
    if unknown:
        raise ConfigError(f"sqs:// does not know the option(s) {', '.join(unknown)}; known: {', '.join(KNOWN)}")
    prefix = str(merged.get("prefix", "events"))
    if not _NAME.match(prefix):
        raise ConfigError(f"sqs option prefix={prefix!r}: use letters, digits, '-' and '_' only")
    if len(prefix) > 60:
        raise ConfigError(f"sqs option prefix={prefix!r}: at most 60 characters")
    endpoint = merged.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None
    return Options(
        region=merged.get("region") or None,
        endpoint_url=endpoint,
        prefix=prefix,
        fifo=_bool("fifo", merged.get("fifo", False)),
        wait=_int("wait", merged.get("wait", 10), 0, 20),
        visibility=_int("visibility", merged.get("visibility", 30), 1, 43_200),
        max_receive_count=_int("max_receive_count", merged.get("max_receive_count", 25), 0, 1000),
        publish_threads=_int("publish_threads", merged.get("publish_threads", 4), 1, 64),
    )
