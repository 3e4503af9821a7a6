"""The hook specifications of pubsubkit: what a plugin may implement, and exactly when each hook is called.

Three kinds of hooks:

- **Registration** (:func:`pubsubkit_register_brokers`, :func:`pubsubkit_register_stores`): called whenever a
  URL is opened. The classes a plugin registers do the work, so the per-message path never goes through
  pluggy.
- **Middleware** (:func:`pubsubkit_handler_middleware`, :func:`pubsubkit_publish_middleware`): called once
  per listener or emitter when it is built; the wrappers they return are composed into one chain then, and
  run around every handler call or publish.
- **Observation** (the others): called as things happen, only when some plugin implements them (a manager
  without one costs nothing). They are told; they cannot change the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pubsubkit.envelope import Envelope
    from pubsubkit.plugin.observers import HandlerMiddleware, Outcome, PublishMiddleware
    from pubsubkit.plugin.specs import BrokerSpec, StoreSpec
    from pubsubkit.transport import DeadLetter

#: The project name of pubsubkit's hooks and the entry-point group of its plugins.
NAME = "pubsubkit"

#: Marks a hook specification of pubsubkit (the functions of this module).
hookspec = pluggy.HookspecMarker(NAME)
#: Marks a plugin's implementation of a pubsubkit hook: ``@hookimpl def pubsubkit_register_brokers(register): ...``.
hookimpl = pluggy.HookimplMarker(NAME)

# -------------------------------------------------------------------------
# Registration hooks: a plugin tells pubsubkit which backends it provides
# -------------------------------------------------------------------------


@hookspec
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Register message backends (emitters and listeners) this plugin provides.

    Called whenever a broker URL is opened with the plugin manager. Call
    ``register(BrokerSpec(schemes=("kafka",), factory=..., capabilities=..., distribution=...))`` once per
    backend. The factory is called with the URL and keyword options and returns a
    :class:`~pubsubkit.transport.Transport`; it should not connect until first used, and raise
    :class:`~pubsubkit.errors.ConfigError` naming a wrong option.

    :param register: the callback that records one :class:`~pubsubkit.plugin.BrokerSpec`.
    """


@hookspec
def pubsubkit_register_stores(register: Callable[[StoreSpec], None]) -> None:
    """Register repository backends (document stores with outbox and inbox) this plugin provides.

    Called whenever a store URL is opened with the plugin manager. Call
    ``register(StoreSpec(schemes=("mongodb",), factory=..., capabilities=..., distribution=...))`` once per
    backend. The factory is called with the URL and keyword options and returns a
    :class:`~pubsubkit.store.Store`.

    :param register: the callback that records one :class:`~pubsubkit.plugin.StoreSpec`.
    """


# -------------------------------------------------------------------------
# Middleware hooks: wrap every handler call or publish
# -------------------------------------------------------------------------


@hookspec
def pubsubkit_handler_middleware(group: str) -> HandlerMiddleware | None:
    """Return a wrapper for the handler calls of a listener of ``group``, or ``None``.

    Called once, when the listener is built. A wrapper takes the next callable of the chain and returns the
    callable that replaces it; both are called as ``call(handler, event, msg)`` once per handler and
    attempt, on the handler's worker thread (for an ``async def`` handler, on a worker thread while its coroutine
    runs on the listener's loop), and return what the handler returned or raise what it raised::

        @hookimpl
        def pubsubkit_handler_middleware(group):
            def wrap(call_next):
                def timed(handler, event, msg):
                    start = time.perf_counter()
                    try:
                        return call_next(handler, event, msg)
                    finally:
                        seconds[handler.__name__] = time.perf_counter() - start
                return timed
            return wrap

    The incoming headers are ``msg.envelope.headers``; headers set in ``msg.reply_headers_extra`` go on
    every event the handler emits through ``msg.unit_of_work()`` or ``msg.reply_headers()``. A wrapper that
    raises fails the attempt as a handler would. The first plugin registered is the outermost wrapper.

    A wrapper may carry an attribute ``awaiting``: its own form for ``async def`` handlers, which takes and
    returns ``async`` calls of the same signature. When every plugin's wrapper has one, async handlers run
    through those on the listener's loop, in the handler's task, without crossing to a thread and back.

    :param group: the listener's consumer group.
    """


@hookspec
def pubsubkit_publish_middleware(url: str) -> PublishMiddleware | None:
    """Return a wrapper for the publishes of an emitter (and so of the outbox relay), or ``None``.

    Called once, when the emitter is built. A wrapper takes the next callable of the chain and returns the
    callable that replaces it; both are called as ``publish(envelopes)`` with the batch about to be sent and
    return the envelopes as sent. To add a header, pass changed envelopes on::

        def wrap(publish_next):
            def stamped(envelopes):
                return publish_next([e.with_headers(x_origin="billing") for e in envelopes])
            return stamped

    The emitter returns the envelopes as sent to its caller. A wrapper runs once per attempt (a publish
    retried after a lost connection runs it again). The first plugin registered is the outermost wrapper.

    :param url: the broker URL, with any password removed.
    """


# -------------------------------------------------------------------------
# Observation hooks: watch messages flow (metrics, logging)
# -------------------------------------------------------------------------


@hookspec
def pubsubkit_emitted(envelopes: Sequence[Envelope], url: str, seconds: float) -> None:
    """Called once per batch, after the broker confirmed every message of it (not for a batch that failed).

    :param envelopes: the confirmed messages, in publish order, as sent.
    :param url: the broker URL, with any password removed.
    :param seconds: how long publishing and confirming the batch took, retries included.
    """


@hookspec
def pubsubkit_received(envelopes: Sequence[Envelope], group: str) -> None:
    """Called once per batch a listener received, before any handler of it runs.

    :param envelopes: the decodable messages of the batch (poison messages go to
        :func:`pubsubkit_dead_lettered` instead).
    :param group: the consumer group.
    """


@hookspec
def pubsubkit_handled(envelope: Envelope, group: str, outcome: Outcome, seconds: float, attempt: int) -> None:
    """Called once per message and attempt, when the listener is done with that attempt.

    A message that is retried is reported once per attempt (``retry`` each time, then its last outcome);
    one without handlers, or found in the inbox, is reported once, without running anything.

    :param envelope: the message.
    :param group: the consumer group.
    :param outcome: an :class:`~pubsubkit.plugin.Outcome` (a ``str``): ``"ok"``, ``"retry"`` (failed, will
        be tried again), ``"failed"`` (failed for the last time, or fatally: dead-lettered next),
        ``"duplicate"`` (the inbox had it already), ``"skipped"`` (no handler for its name) or
        ``"released"`` (given back to the broker unfinished: the listener stopped, or the delivery was
        revoked, before its handlers were done).
    :param seconds: how long the handlers ran in this attempt (0 when none ran).
    :param attempt: which delivery attempt this was, from 1.
    """


@hookspec
def pubsubkit_dead_lettered(letter: DeadLetter) -> None:
    """Called once per message, after it was moved to the dead-letter destination.

    :param letter: the dead letter, with reason (``poison``, ``failed``, ``fatal``), error, attempts, the
        original event name and the consumer group.
    """


@hookspec
def pubsubkit_outbox_relayed(count: int, pending: int, url: str) -> None:
    """Called once per batch the outbox relay published and marked sent.

    :param count: how many entries were published and marked sent.
    :param pending: how many entries were still waiting when the batch was read.
    :param url: the store URL, with any password removed.
    """


@hookspec
def pubsubkit_consumer_lag(group: str, lag: Mapping[str, int], url: str) -> None:
    """Called every ``lag_interval`` seconds per running listener (and per poll of a
    :class:`~pubsubkit.lag.LagMonitor`), with how many messages wait for the group, as the broker can tell.

    :param group: the consumer group.
    :param lag: messages waiting, by partition or queue (``{"0": 12, "1": 0}`` on Kafka, ``{queue: n}`` on
        RabbitMQ and SQS, ``{"log": n}`` on SQLite and memory).
    :param url: the broker URL, with any password removed.
    """
