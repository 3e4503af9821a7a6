"""The one door from the runtime to the plugins: what emitters, relays and listeners tell them, and the
middleware chains the plugins put around handler calls and publishes.

The runtime never looks hooks up itself. It gets an :class:`Observers` (built once per emitter, relay or
listener from a plugin manager, or :data:`NO_OBSERVERS`) and calls typed methods on it; a method whose hook no
plugin implements does nothing, and a chain without middleware is the bare call.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pubsubkit.coroutines import not_awaited

if TYPE_CHECKING:
    import pluggy

    from pubsubkit.envelope import Envelope
    from pubsubkit.listener import Message
    from pubsubkit.transport import DeadLetter

__all__ = [
    "NO_OBSERVERS",
    "AsyncHandlerCall",
    "HandlerCall",
    "HandlerMiddleware",
    "Observers",
    "Outcome",
    "PublishCall",
    "PublishMiddleware",
]

#: ``call(handler, event, msg)``: runs one handler (and whatever wraps it) and returns what it returned.
HandlerCall = Callable[[Callable[[Any, "Message"], object], Any, "Message"], object]
#: A handler middleware: takes the next :data:`HandlerCall` of the chain, returns the one replacing it. It may
#: carry an attribute ``awaiting``: the same middleware for ``async def`` handlers, taking and returning an
#: :data:`AsyncHandlerCall` (see :func:`~pubsubkit.plugin.hookspecs.pubsubkit_handler_middleware`).
HandlerMiddleware = Callable[[HandlerCall], HandlerCall]
#: ``await call(handler, event, msg)``: runs one ``async def`` handler (and whatever wraps it) on the loop.
AsyncHandlerCall = Callable[[Callable[[Any, "Message"], object], Any, "Message"], Awaitable[object]]
#: ``publish(envelopes)``: publishes a batch (through whatever wraps it) and returns the envelopes as sent.
PublishCall = Callable[[Sequence["Envelope"]], Sequence["Envelope"]]
#: A publish middleware: takes the next :data:`PublishCall` of the chain, returns the one replacing it.
PublishMiddleware = Callable[[PublishCall], PublishCall]


class Outcome(enum.StrEnum):
    """What became of one attempt at a message, as :func:`~pubsubkit.plugin.hookspecs.pubsubkit_handled`
    reports it. A ``str``: ``outcome == "ok"`` holds for :attr:`OK`, and metrics use the value as label."""

    OK = "ok"
    RETRY = "retry"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    RELEASED = "released"

    @property
    def final(self) -> bool:
        """Whether the message is done with (every outcome but :attr:`RETRY`)."""
        return self is not Outcome.RETRY


def call_handler(handler: Callable[[Any, Message], object], event: Any, msg: Message) -> object:
    """The innermost :data:`HandlerCall`: the handler itself (a sync one that returns an awaitable fails)."""
    result = handler(event, msg)
    if result is not None and inspect.isawaitable(result):
        raise not_awaited(handler, result)
    return result


async def await_handler(handler: Callable[[Any, Message], object], event: Any, msg: Message) -> object:
    """The innermost :data:`AsyncHandlerCall`: awaits the coroutine of an ``async def`` handler."""
    return await handler.__pubsubkit_async__(event, msg)  # type: ignore[attr-defined]


class Observers:
    """Typed calls into the observation hooks, and the middleware chains, of one plugin manager.

    Build it once per emitter, relay or listener (hooks are looked up here, not per message). Plugins
    registered with the manager later are not seen by an :class:`Observers` built before: the observation hooks'
    implementations are taken now and called directly (see :func:`_direct`).
    """

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self._pm = pm

        def get(name: str, *args: str) -> Any:
            if pm is None:
                return None
            hook = getattr(pm.hook, name)
            if not hook.get_hookimpls():
                return None
            return _direct(pm, hook, args) if args else hook

        self._emitted = get("pubsubkit_emitted", "envelopes", "url", "seconds")
        self._received = get("pubsubkit_received", "envelopes", "group")
        self._handled = get("pubsubkit_handled", "envelope", "group", "outcome", "seconds", "attempt")
        self._dead = get("pubsubkit_dead_lettered", "letter")
        self._relayed = get("pubsubkit_outbox_relayed", "count", "pending", "url")
        self._lag = get("pubsubkit_consumer_lag", "group", "lag", "url")
        self._handler_mw = get("pubsubkit_handler_middleware")
        self._publish_mw = get("pubsubkit_publish_middleware")

    # --- middleware -------------------------------------------------------------------------------------

    def handler_chains(self, group: str) -> tuple[HandlerCall | None, AsyncHandlerCall | None]:
        """The chains a listener of ``group`` runs each handler through, built now, once: ``(sync, async)``.

        ``(None, None)`` without handler middleware (the handler is called directly). The async chain, for
        ``async def`` handlers on the loop, exists only when every wrapper has its ``awaiting`` form; without
        it, an async handler's call goes through the sync chain in a thread.
        """
        wrappers: list[HandlerMiddleware] = []
        if self._handler_mw is not None:
            wrappers = [w for w in self._handler_mw(group=group) if w is not None]
        if not wrappers:
            return None, None
        chain: HandlerCall = _compose(call_handler, wrappers)
        awaiting = [a for a in (getattr(w, "awaiting", None) for w in wrappers) if a is not None]
        if len(awaiting) < len(wrappers):
            return chain, None
        achain: AsyncHandlerCall = _compose(await_handler, awaiting)
        return chain, achain

    def publish_chain(self, publish: PublishCall, url: str) -> PublishCall:
        """``publish`` wrapped in the publish middleware of the plugins (for an emitter of ``url``)."""
        wrappers: list[PublishMiddleware] = []
        if self._publish_mw is not None:
            wrappers = [w for w in self._publish_mw(url=url) if w is not None]
        chain: PublishCall = _compose(publish, wrappers)
        return chain

    # --- observation ------------------------------------------------------------------------------------

    def emitted(self, envelopes: Sequence[Envelope], url: str, seconds: float) -> None:
        """Call ``pubsubkit_emitted`` of the plugins that implement it."""
        if self._emitted is not None:
            self._emitted(envelopes, url, seconds)

    def received(self, envelopes: Sequence[Envelope], group: str) -> None:
        """Call ``pubsubkit_received`` of the plugins that implement it (not for an empty batch)."""
        if self._received is not None and envelopes:
            self._received(envelopes, group)

    def handled(self, envelope: Envelope, group: str, outcome: Outcome, seconds: float, attempt: int) -> None:
        """Call ``pubsubkit_handled`` of the plugins that implement it."""
        if self._handled is not None:
            self._handled(envelope, group, outcome, seconds, attempt)

    def dead_lettered(self, letter: DeadLetter) -> None:
        """Call ``pubsubkit_dead_lettered`` of the plugins that implement it."""
        if self._dead is not None:
            self._dead(letter)

    def outbox_relayed(self, count: int, pending: int, url: str) -> None:
        """Call ``pubsubkit_outbox_relayed`` of the plugins that implement it."""
        if self._relayed is not None:
            self._relayed(count, pending, url)

    def consumer_lag(self, group: str, lag: Mapping[str, int], url: str) -> None:
        """Call ``pubsubkit_consumer_lag`` of the plugins that implement it."""
        if self._lag is not None:
            self._lag(group, lag, url)

    @property
    def wants_relayed(self) -> bool:
        """Whether a plugin listens to :meth:`outbox_relayed` (the relay then counts what is pending)."""
        return self._relayed is not None


def _direct(pm: pluggy.PluginManager, hook: pluggy.HookCaller, names: Sequence[str]) -> Callable[..., None]:
    """A function taking the arguments ``names`` of observation hook ``hook`` by position and calling each of its
    implementations, in pluggy's order, as pluggy would: with the arguments each names, stopping at the first
    that raises.

    pluggy's own call builds a keyword dict and a result list and checks the arguments, about 3 us per call: the
    listener reports every message. A hook with a wrapper implementation, or a manager whose hook calls are
    traced or monitored, keeps pluggy's call.
    """
    multicall: object = None
    with contextlib.suppress(ImportError):  # another pluggy: its own call, as before
        from pluggy._callers import _multicall as multicall
    impls = hook.get_hookimpls()
    traced = multicall is None or getattr(pm, "_inner_hookexec", None) is not multicall
    if traced or any(i.hookwrapper or i.wrapper for i in impls):
        return lambda *args: hook(**dict(zip(names, args, strict=True)))
    calls: list[Callable[..., object]] = []
    for impl in reversed(impls):  # pluggy calls the last registered first
        wanted = tuple(names.index(a) for a in impl.argnames)
        if wanted == tuple(range(len(names))):
            calls.append(impl.function)
        else:  # an implementation taking fewer of the arguments, or in another order
            calls.append(functools.partial(_pick, impl.function, wanted))
    if len(calls) == 1:
        return calls[0]  # type: ignore[return-value]  # the hook's result is not used

    def call_each(*args: Any) -> None:
        for fn in calls:
            fn(*args)

    return call_each


def _pick(fn: Callable[..., object], wanted: tuple[int, ...], *args: Any) -> None:
    fn(*[args[i] for i in wanted])


def _compose(inner: Any, wrappers: Sequence[Callable[[Any], Any]]) -> Any:
    """``inner`` wrapped by each of ``wrappers`` in turn: the last of them is outermost.

    pluggy returns hook results last registered first, so the first plugin registered ends up outermost.
    """
    return functools.reduce(lambda call, wrap: wrap(call), wrappers, inner)


#: Observers of no plugin: every call does nothing, every chain is the bare call.
NO_OBSERVERS = Observers(None)
