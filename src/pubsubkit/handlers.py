"""The handler table of a listener: which functions run for which event name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pubsubkit.batch import BatchHandler, BatchSpec
from pubsubkit.coroutines import CoroutineRunner, is_async_handler, refuse_unrunnable
from pubsubkit.errors import ConfigError
from pubsubkit.events import EventRegistry, UnknownEvent
from pubsubkit.message import Message

__all__ = ["E", "Handler", "HandlerTable", "TypedHandler", "check_handler"]

E = TypeVar("E")
#: A handler: called with the decoded event and its :class:`~pubsubkit.message.Message`.
Handler = Callable[[Any, Message], object]
TypedHandler = Callable[[E, Message], object]


def check_handler(fn: object) -> None:
    """``fn`` can be called as ``fn(event, msg)``: raise TypeError naming the handler and the fix otherwise.

    >>> check_handler(lambda event: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: handler <lambda> cannot be called as fn(event, msg): too many positional arguments; define it as ...
    """
    if not callable(fn):
        raise TypeError(f"a handler must be callable, not {type(fn).__name__}: pass a function fn(event, msg)")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or extension without a signature: trust it
        return
    try:
        signature.bind(None, None)
    except TypeError as exc:
        name = getattr(fn, "__name__", None) or type(fn).__name__
        raise TypeError(
            f"handler {name} cannot be called as fn(event, msg): {exc}; define it as def {name}(event, msg)"
        ) from None


class HandlerTable:
    """Handlers by wire name, in the order they were added, and the fallback handlers of
    :class:`~pubsubkit.events.UnknownEvent` (names no other handler takes)."""

    def __init__(self, registry: EventRegistry, name: str = "pubsubkit-async") -> None:
        self.registry = registry
        #: Runs the ``async def`` handlers (its event loop starts with the first one).
        self.runner = CoroutineRunner(name)
        self._by_name: dict[str, list[Handler]] = {}
        self._fallback: list[Handler] = []
        self._batches: dict[str, BatchSpec] = {}
        #: Whether a handler is ``async def`` (the listener's lanes are then tasks on the runner's loop).
        self.has_async = False

    def add(self, event_type: type[Any] | str, fn: Handler) -> None:
        """Run ``fn`` for ``event_type`` (a registered event class, a wire name, or ``UnknownEvent``).

        Checked here, in the caller: ``event_type`` must be one of those (ConfigError) and ``fn`` a callable
        that takes ``(event, msg)`` (TypeError), so that a mistake is not found message by message. An
        ``async def`` handler is run to its end on the table's :class:`~pubsubkit.coroutines.CoroutineRunner`
        before its message is settled; an async generator is refused (TypeError).
        """
        check_handler(fn)
        refuse_unrunnable(fn)
        if event_type is UnknownEvent:
            self._fallback.append(self._runnable(fn))
            return
        name = self._name(event_type)
        if name in self._batches:
            raise ConfigError(
                f"{name} has a batch handler in this listener: an event is handled either by one batch handler or"
                " one by one (give the other handler a listener of its own group)"
            )
        self._by_name.setdefault(name, []).append(self._runnable(fn))

    def _runnable(self, fn: Handler) -> Handler:
        """``fn``, or for an ``async def`` one a sync callable running it on the runner (lanes become tasks)."""
        if is_async_handler(fn):
            self.has_async = True
            return self.runner.wrap(fn)
        return fn

    def _name(self, event_type: type[Any] | str) -> str:
        """The wire name of an event class or name (ConfigError / TypeError naming the fix)."""
        if isinstance(event_type, str):
            if not event_type:
                raise ConfigError("an event name must not be empty")
            return event_type
        if isinstance(event_type, type):
            return self.registry.name_of(event_type)  # ConfigError naming the decorator when not registered
        raise TypeError(
            f"{event_type!r} is not an event type: pass a class decorated with @pubsubkit.event(...), a wire"
            " name (str) or UnknownEvent"
        )

    def add_batch(
        self, event_types: Sequence[type[Any] | str], fn: BatchHandler, max_size: int, max_wait: float
    ) -> None:
        """Run ``fn(events, batch)`` for batches of ``event_types`` (see :mod:`pubsubkit.batching`).

        An event name takes either one batch handler or per-message handlers (ConfigError otherwise); the
        fallback ``UnknownEvent`` cannot be batched. An ``async def`` batch handler is run to its end by the
        table's coroutine runner, from the lane.
        """
        check_handler(fn)
        refuse_unrunnable(fn)
        if not event_types:
            raise ConfigError("on_batch() needs at least one event type: on_batch(EventCreated, max_size=100)")
        names = []
        for et in event_types:
            if et is UnknownEvent:
                raise ConfigError("UnknownEvent cannot have a batch handler: handle unknown names one by one")
            name = self._name(et)
            if name in self._by_name or name in self._batches:
                raise ConfigError(
                    f"{name} already has a {'batch ' if name in self._batches else ''}handler in this listener: an"
                    " event is handled either by one batch handler or one by one (use a listener of another group)"
                )
            names.append(name)
        call = self.runner.wrap(fn) if is_async_handler(fn) else fn
        spec = BatchSpec(call, max_size, max_wait, getattr(fn, "__name__", type(fn).__name__))
        for name in names:
            self._batches[name] = spec

    def batch_of(self, name: str) -> BatchSpec | None:
        """The batch handler of ``name``, if it has one."""
        return self._batches.get(name)

    @property
    def has_batches(self) -> bool:
        """Whether a batch handler was added."""
        return bool(self._batches)

    def decorator(self, *event_types: type[Any]) -> Callable[[TypedHandler[E]], TypedHandler[E]]:
        """A decorator adding the function for each of ``event_types``."""

        def deco(fn: TypedHandler[E]) -> TypedHandler[E]:
            for et in event_types:
                self.add(et, fn)
            return fn

        return deco

    @property
    def names(self) -> list[str]:
        """The wire names with a handler of their own (one by one or in batches), sorted."""
        return sorted({*self._by_name, *self._batches})

    @property
    def subscription(self) -> list[str] | None:
        """The names to subscribe to: ``None`` (every name) when there is a fallback handler."""
        return None if self._fallback else self.names

    def lookup(self, name: str) -> Sequence[Handler]:
        """The handlers of ``name``; the fallback for a name no event class is registered for; else none."""
        handlers = self._by_name.get(name)
        if handlers is not None:
            return handlers
        if name in self.registry or not self._fallback:
            return ()
        return self._fallback
