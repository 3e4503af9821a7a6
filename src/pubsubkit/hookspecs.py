"""Hook specifications of pubsubkit.

Backends and observers are pluggy plugins. Registration hooks hand a ``register`` callback to each plugin;
the classes they register do the work, so the per-message path never goes through pluggy. Observation hooks
are called per batch of messages, only when some plugin implements them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pubsubkit.envelope import Envelope
    from pubsubkit.registry import BrokerSpec, StoreSpec
    from pubsubkit.transport import DeadLetter

NAME = "pubsubkit"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)

# -------------------------------------------------------------------------
# Registration hooks: a plugin tells pubsubkit which backends it provides
# -------------------------------------------------------------------------


@hookspec
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Register message backends (emitters and listeners) this plugin provides.

    Call ``register(BrokerSpec(schemes=("kafka",), factory=..., capabilities=..., distribution=...))`` once
    per backend. The factory is called with the URL and keyword options and returns a
    :class:`~pubsubkit.transport.Transport`; it should not connect until first used or raise
    :class:`~pubsubkit.errors.ConfigError` naming the wrong option.

    :param register: the callback that records one :class:`~pubsubkit.registry.BrokerSpec`.
    """


@hookspec
def pubsubkit_register_stores(register: Callable[[StoreSpec], None]) -> None:
    """Register repository backends (document stores with outbox and inbox) this plugin provides.

    Call ``register(StoreSpec(schemes=("mongodb",), factory=..., distribution=...))`` once per backend. The
    factory is called with the URL and keyword options and returns a :class:`~pubsubkit.store.Store`.

    :param register: the callback that records one :class:`~pubsubkit.registry.StoreSpec`.
    """


# -------------------------------------------------------------------------
# Observation hooks: watch messages flow (metrics, tracing, logging)
# -------------------------------------------------------------------------


@hookspec
def pubsubkit_emitted(envelopes: Sequence[Envelope], url: str, seconds: float) -> None:
    """Called after the broker confirmed a batch of published messages.

    :param envelopes: the confirmed messages, in publish order.
    :param url: the broker URL, with any password removed.
    :param seconds: how long publishing and confirming the batch took.
    """


@hookspec
def pubsubkit_received(envelopes: Sequence[Envelope], group: str) -> None:
    """Called when a listener received a batch of messages, before any handler runs.

    :param envelopes: the decodable messages received (poison messages go to
        :func:`pubsubkit_dead_lettered` instead).
    :param group: the consumer group.
    """


@hookspec
def pubsubkit_handled(envelope: Envelope, group: str, outcome: str, seconds: float, attempt: int) -> None:
    """Called after each handler attempt.

    :param envelope: the message.
    :param group: the consumer group.
    :param outcome: ``"ok"``, ``"retry"`` (failed, will be tried again), ``"failed"`` (failed for the last
        time), ``"duplicate"`` (the inbox had it already) or ``"skipped"`` (no handler for its name).
    :param seconds: how long the handler ran.
    :param attempt: which attempt this was, from 1.
    """


@hookspec
def pubsubkit_dead_lettered(letter: DeadLetter) -> None:
    """Called after a message was moved to the dead-letter destination.

    :param letter: the dead letter, with reason (``poison``, ``failed``, ``fatal``), error, attempts, the
        original event name and the consumer group.
    """


@hookspec
def pubsubkit_outbox_relayed(count: int, pending: int, url: str) -> None:
    """Called after the outbox relay published a batch.

    :param count: how many entries were published and marked sent.
    :param pending: how many entries were still waiting when the batch was read.
    :param url: the store URL, with any password removed.
    """
