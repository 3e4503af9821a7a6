"""The handler table of a listener: which functions run for which event name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pubsubkit.events import EventRegistry, UnknownEvent
from pubsubkit.message import Message

__all__ = ["E", "Handler", "HandlerTable", "TypedHandler"]

E = TypeVar("E")
#: A handler: called with the decoded event and its :class:`~pubsubkit.message.Message`.
Handler = Callable[[Any, Message], object]
TypedHandler = Callable[[E, Message], object]


class HandlerTable:
    """Handlers by wire name, in the order they were added, and the fallback handlers of
    :class:`~pubsubkit.events.UnknownEvent` (names no other handler takes)."""

    def __init__(self, registry: EventRegistry) -> None:
        self.registry = registry
        self._by_name: dict[str, list[Handler]] = {}
        self._fallback: list[Handler] = []

    def add(self, event_type: type[Any] | str, fn: Handler) -> None:
        """Run ``fn`` for ``event_type`` (a registered event class, a wire name, or ``UnknownEvent``)."""
        if event_type is UnknownEvent:
            self._fallback.append(fn)
            return
        name = event_type if isinstance(event_type, str) else self.registry.name_of(event_type)
        self._by_name.setdefault(name, []).append(fn)

    def decorator(self, *event_types: type[Any]) -> Callable[[TypedHandler[E]], TypedHandler[E]]:
        """A decorator adding the function for each of ``event_types``."""

        def deco(fn: TypedHandler[E]) -> TypedHandler[E]:
            for et in event_types:
                self.add(et, fn)
            return fn

        return deco

    @property
    def names(self) -> list[str]:
        """The wire names with a handler of their own, sorted."""
        return sorted(self._by_name)

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
