"""The exchanges and queues of a consumer group, declared the same way by every member of it.

A group has its own queue (``<exchange>.<group>`` unless ``queue.<group>`` names it) bound to the names it
handles, and a dead-letter queue ``<exchange>.<group>.dlq``. With ``share.<group>=<queue>:<names>`` the group
takes some of its names from a queue another application declares too (a classic durable queue without
arguments, as AMQP clients declare theirs by default), competing with that application's consumers; those names
are then not bound to the group's own queue, so each message of them is handled once by one of the two.

A queue that exists with other arguments is refused by the broker with PRECONDITION_FAILED, which also closes
the channel; :func:`declare_group` turns that into a :class:`QueueMismatch` naming the queue, the argument and
the option that fixes it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import attrs
import pika.exceptions

from pubsubkit.errors import ConfigError
from pubsubkit_rabbitmq._archive import declare_archive
from pubsubkit_rabbitmq._options import QueueMismatch, Settings

__all__ = ["Bindings", "QueueMismatch", "bindings_of", "declare_group", "register_group", "registered_groups"]

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']*)' in vhost '[^']*':"
    r" received (?P<received>.+) but current is (?P<current>.+)$"
)


@attrs.frozen
class Bindings:
    """The queues a group consumes and the names bound to each (``#``: every name)."""

    queues: Mapping[str, tuple[str, ...]]
    #: Names taken from a shared queue: unbound from the group's own queue, where an earlier run may have bound them.
    moved: tuple[str, ...] = ()


def bindings_of(settings: Settings, group: str, names: Collection[str] | None) -> Bindings:
    """Which of ``names`` (None: every name) ``group`` takes from which queue."""
    own = settings.queue(group)
    share = settings.group(group).share
    if share is None:
        return Bindings({own: tuple(sorted(names)) if names is not None else ("#",)})
    if names is None:
        raise ConfigError(
            f"rabbitmq option share.{group}: the group's listener handles every name, so the names it shares would"
            f" reach it twice; give it handlers by name, or drop share.{group}"
        )
    if share.queue == own:
        raise ConfigError(
            f"rabbitmq option share.{group}={share.queue}:...: that is the group's own queue; to consume all of"
            f" that queue set queue.{group}={share.queue} instead"
        )
    shared = tuple(sorted(share.names & set(names)))
    if not shared:
        raise ConfigError(
            f"rabbitmq option share.{group}: the group handles none of {', '.join(sorted(share.names))}"
            f" (it handles {', '.join(sorted(names)) or 'no name'})"
        )
    rest = tuple(sorted(set(names) - share.names))
    return Bindings({own: rest, share.queue: shared}, moved=(*shared, "#"))


def _declares_as(channel: Any, settings: Settings, group: str, queue: str) -> str | None:
    """The queue type ``queue`` was declared with, if it is one the group can declare it as; None otherwise.

    Declaring an existing queue with its own arguments changes nothing, so each type is tried on a channel of its
    own (a refusal closes the channel).
    """
    for queue_type in ("quorum", "classic"):
        probe = channel.connection.channel()
        try:
            probe.queue_declare(queue, durable=True, arguments=settings.queue_arguments(group, queue_type))
        except pika.exceptions.ChannelClosedByBroker:
            continue
        probe.close()
        return queue_type
    return None


def _fix(channel: Any, settings: Settings, group: str, queue: str, arg: str) -> str:
    """What to set so that ``group`` declares ``queue`` as it exists."""
    another = f"give the group another queue with queue.{group}=<name>"
    if queue != settings.queue(group):
        return (
            f"a queue shared by share.{group} is declared durable and classic without arguments; declare it so in"
            " the other application, or share another queue"
        )
    if arg in ("x-queue-type", "x-dead-letter-exchange", "x-dead-letter-routing-key"):
        existing = _declares_as(channel, settings, group, queue)
        if existing is not None:
            return f"it is a {existing} queue: set queue_type.{group}={existing} to use it as it is, or {another}"
    if arg == "x-single-active-consumer":
        return f"set single_active to match it, or {another}"
    if arg == "x-expires":
        return f"set queue_expires to match it, or {another}"
    return (
        f"{another}, or, when another application declares {queue}, take the names both handle from it with"
        f" share.{group}={queue}:<name>,..."
    )


def _mismatch(
    channel: Any, settings: Settings, group: str, queue: str, exc: pika.exceptions.ChannelClosedByBroker
) -> QueueMismatch:
    """The broker's PRECONDITION_FAILED for ``queue`` as an error naming the argument and the fix."""
    found = _INEQUIVALENT.search(exc.reply_text or "")
    if found is None:
        return QueueMismatch(f"queue {queue!r} of group {group}: the broker refused it: {exc.reply_text}")
    arg = found["arg"]
    return QueueMismatch(
        f"queue {queue!r} of group {group} exists with other arguments: {arg} is {found['current']} there, the"
        f" group declares {found['received']}: {_fix(channel, settings, group, queue, arg)}"
    )


def _declare(channel: Any, settings: Settings, group: str, queue: str, arguments: dict[str, Any] | None) -> None:
    try:
        channel.queue_declare(queue, durable=True, arguments=arguments)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406:
            raise _mismatch(channel, settings, group, queue, exc) from None
        raise


def declare_group(channel: Any, settings: Settings, group: str, names: Collection[str] | None) -> Bindings:
    """Declare the exchanges, the archive, ``group``'s queues (bound as :func:`bindings_of` says) and its
    dead-letter queue."""
    s = settings
    bindings = bindings_of(s, group, names)
    channel.exchange_declare(s.exchange, exchange_type="topic", durable=True)
    channel.exchange_declare(s.dead_letter_exchange, exchange_type="direct", durable=True)
    declare_archive(channel, s)
    own = s.queue(group)
    for queue, keys in bindings.queues.items():
        _declare(channel, s, group, queue, s.queue_arguments(group) if queue == own else None)
        for key in keys:
            channel.queue_bind(queue, s.exchange, routing_key=key)
    for key in bindings.moved:
        channel.queue_unbind(own, s.exchange, routing_key=key)
    dead = s.dead_letter_queue(group)
    _declare(channel, s, group, dead, s.dead_letter_queue_arguments())
    channel.queue_bind(dead, s.dead_letter_exchange, routing_key=group)
    return bindings


def register_group(channel: Any, settings: Settings, group: str) -> None:
    """Note ``group`` in the groups queue (once per consumer), so that its dead letters are listed without it."""
    channel.queue_declare(settings.groups_queue, durable=True, arguments={"x-queue-type": "classic"})
    props = pika.BasicProperties(delivery_mode=2, content_type="text/plain")
    channel.basic_publish("", settings.groups_queue, group.encode(), props)


def registered_groups(channel: Any, settings: Settings) -> list[str]:
    """The groups noted in the groups queue; compacts it when it holds many repeats."""
    try:
        channel.queue_declare(settings.groups_queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return []
        raise
    seen: dict[str, None] = {}
    last = 0
    count = 0
    while True:
        method, _props, body = channel.basic_get(settings.groups_queue, auto_ack=False)
        if method is None:
            break
        last, count = method.delivery_tag, count + 1
        seen.setdefault(body.decode(errors="replace"), None)
    if count > 2 * len(seen) + 10:  # rewrite it with each group once, then drop the old entries
        props = pika.BasicProperties(delivery_mode=2, content_type="text/plain")
        for group in seen:
            channel.basic_publish("", settings.groups_queue, group.encode(), props)
        channel.basic_ack(last, multiple=True)
    return sorted(seen)
