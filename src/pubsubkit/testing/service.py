"""Helpers for testing a service built on pubsubkit: call a handler directly, or run everything until idle.

On ``memory://`` backends a test needs no server::

    broker = pubsubkit.open_broker("memory://orders")
    store = pubsubkit.open_store("memory://orders")
    listener = broker.listener("shipping", store=store)
    listener.add_handler(OrderPlaced, ship)
    relay = broker.relay(store)
    place_order(store)                       # writes and emits through a unit of work: into the outbox
    run_until_idle(broker, listener, relays=[relay])
    assert ...                               # every handler has run, every outbox entry is published

A handler is a plain function, so a unit test may also call it with :func:`message_for`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pubsubkit.api import Broker
from pubsubkit.codec import Codec, default_codec
from pubsubkit.errors import ConfigError
from pubsubkit.events import EventRegistry
from pubsubkit.listener import Listener
from pubsubkit.message import Message
from pubsubkit.outbox import OutboxRelay
from pubsubkit.store import Store

__all__ = ["message_for", "redelivery_of", "run_until_idle"]


def message_for(
    event: Any,
    *,
    store: Store | None = None,
    group: str = "test",
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    attempt: int = 1,
    codec: Codec | None = None,
) -> Message:
    """The :class:`~pubsubkit.message.Message` a listener of ``group`` would hand a handler with ``event``.

    With ``store``, ``msg.unit_of_work()`` writes through that store and records the message in the group's
    inbox, as it would in a listener with ``store=``: calling the handler twice with the same message has one
    effect. ``event`` must be of a registered event type (``@pubsubkit.event``).
    """
    envelope = (codec or default_codec()).envelope(event, key=key, headers=headers)
    return Message(envelope, group, attempt, store)


def redelivery_of(msg: Message) -> Message:
    """The message a listener hands a handler when ``msg`` is delivered again: the same envelope (so the same id
    for the inbox), the next attempt, a unit of work of its own."""
    return Message(msg.envelope, msg.group, msg.attempt + 1, msg.store, msg.inbox_id)


def run_until_idle(
    broker: Broker,
    *listeners: Listener,
    relays: Sequence[OutboxRelay] = (),
    timeout: float = 10.0,
) -> None:
    """Start the ``listeners`` that are not running yet, then return once nothing is left to do: every message
    published so far is settled by each listener's group (handled, or dead-lettered) and every relay's outbox is
    published, including what the handlers caused meanwhile. Raise TimeoutError naming what is still busy.

    The relays are driven here (:meth:`~pubsubkit.outbox.OutboxRelay.relay_once`), not started. Needs a
    ``memory://`` broker, which can tell what a group has not settled yet.
    """
    backlog = getattr(broker.transport, "backlog", None)
    if backlog is None:
        raise ConfigError(f"run_until_idle needs a memory:// broker, not {broker.url}: test with memory:// URLs")
    for listener in listeners:
        if not listener.started:
            listener.start()
        if not listener.wait_ready(timeout):
            raise TimeoutError(f"listener {listener.group} did not join its group within {timeout:g}s")
    deadline = time.monotonic() + timeout
    while True:
        relayed = sum(_drain(relay) for relay in relays)
        busy = {listener.group: backlog(listener.group) for listener in listeners}
        busy = {group: n for group, n in busy.items() if n}
        if not busy and not relayed and not any(relay.store.outbox_count() for relay in relays):
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(f"group {g}: {n} unsettled" for g, n in busy.items()) or "outbox not empty"
            raise TimeoutError(f"not idle after {timeout:g}s: {waiting}")
        time.sleep(0.01)


def _drain(relay: OutboxRelay) -> int:
    total = 0
    while n := relay.relay_once():
        total += n
    return total


def assert_contract_kept(published: str | os.PathLike[str], registry: EventRegistry | None = None) -> None:
    """Fail (AssertionError listing each break and its fix) when the event classes of ``registry`` (default:
    pubsubkit's) break the readers of the contract published in the JSON file ``published``: a schema mapping
    written by ``pubsubkit schema`` or an AsyncAPI document (:func:`pubsubkit.contracts.breaking_changes`)."""
    from pubsubkit.contracts import breaking_changes
    from pubsubkit.schema import event_schemas

    path = Path(published)
    try:
        contract = json.loads(path.read_text())
    except FileNotFoundError:
        raise AssertionError(
            f"no published contract at {path}: write it with pubsubkit schema MODULE --out {path}"
        ) from None
    breaks = breaking_changes(contract, event_schemas(registry))
    assert not breaks, f"the event classes break the contract published in {path}:\n" + "\n".join(
        f"  - {b}" for b in breaks
    )
