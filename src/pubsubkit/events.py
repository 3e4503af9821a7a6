"""Event types: attrs classes registered under a name, with a schema version and upcasters.

>>> @event("eventBooked")
... @attrs.frozen
... class EventBooked:
...     event_id: str = attrs.field(metadata={WIRE_NAME: "eventId"})
...     user_id: str = attrs.field(metadata={WIRE_NAME: "userId"})

Models carry no serialization code; :mod:`pubsubkit.codec` turns them into bytes and back. A payload written
by an older schema version is passed through the registered upcasters, oldest first, before it is structured.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar, cast

import attrs

from pubsubkit.errors import ConfigError

__all__ = ["WIRE_NAME", "EventRegistry", "EventType", "UnknownEvent", "event", "registry", "upcaster"]

#: ``attrs.field(metadata={WIRE_NAME: "eventId"})`` gives a field another name in JSON.
WIRE_NAME: Final = "pubsubkit.wire_name"

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@attrs.frozen
class UnknownEvent:
    """What a consumer receives for an event name no registered type matches.

    Handlers subscribed to :class:`UnknownEvent` (the fallback) see these; without a fallback they are
    acknowledged and counted as skipped, never crash the consumer.
    """

    name: str
    payload: Any


@attrs.frozen
class EventType:
    """A registered event type: its class, wire name, current schema version and upcasters."""

    cls: type[Any]
    name: str
    version: int = 1
    upcasters: Mapping[int, Upcaster] = attrs.field(factory=dict)


class EventRegistry:
    """Maps event names to classes and back. One per application is usual; the default is :data:`registry`."""

    def __init__(self) -> None:
        self._by_name: dict[str, EventType] = {}
        self._by_cls: dict[type[Any], EventType] = {}
        self._lock = threading.Lock()

    def register(self, cls: type[T], name: str, version: int = 1) -> type[T]:
        """Register attrs class ``cls`` as event ``name`` at schema ``version``; returns ``cls``."""
        if not attrs.has(cls):  # narrows cls for mypy below, hence the cast on return
            raise ConfigError(f"event type {cls.__qualname__} must be an attrs class (decorate it with @attrs.frozen)")
        if version < 1:
            raise ConfigError(f"event {name!r}: schema version must be >= 1, got {version}")
        with self._lock:
            old = self._by_name.get(name)
            if old is not None and old.cls is not cls and old.cls.__qualname__ != cls.__qualname__:
                raise ConfigError(
                    f"event name {name!r} is already registered to {old.cls.__qualname__}; pick another name"
                )
            upcasters = dict(old.upcasters) if old is not None else {}
            if old is not None:
                self._by_cls.pop(old.cls, None)
            et = EventType(cls=cls, name=name, version=version, upcasters=upcasters)
            self._by_name[name] = et
            self._by_cls[cls] = et
        return cast("type[T]", cls)

    def add_upcaster(self, name: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` to turn a payload of ``name`` at ``from_version`` into the next version."""
        with self._lock:
            et = self._by_name.get(name)
            if et is None:
                raise ConfigError(f"upcaster for unknown event {name!r}: register the event type first")
            ups = dict(et.upcasters)
            ups[from_version] = fn
            new = attrs.evolve(et, upcasters=ups)
            self._by_name[name] = new
            self._by_cls[et.cls] = new

    def by_name(self, name: str) -> EventType | None:
        """The event type registered as ``name``, or None."""
        return self._by_name.get(name)

    def by_class(self, cls: type[Any]) -> EventType:
        """The event type of ``cls``; ConfigError naming the decorator when it is not registered."""
        et = self._by_cls.get(cls)
        if et is None:
            raise ConfigError(
                f"{cls.__qualname__} is not a registered event type: decorate it with @pubsubkit.event('name')"
            )
        return et

    def name_of(self, cls: type[Any]) -> str:
        """The wire name of event class ``cls``."""
        return self.by_class(cls).name

    def __iter__(self) -> Iterator[EventType]:
        return iter(list(self._by_name.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


#: The default registry used by :func:`event` and the codec.
registry = EventRegistry()


def event(name: str, *, version: int = 1, into: EventRegistry | None = None) -> Callable[[type[T]], type[T]]:
    """Class decorator registering an attrs class as the event type ``name`` at schema ``version``."""

    def deco(cls: type[T]) -> type[T]:
        return (into or registry).register(cls, name, version)

    return deco


def upcaster(name: str, from_version: int, *, into: EventRegistry | None = None) -> Callable[[Upcaster], Upcaster]:
    """Decorator registering ``fn(payload_dict) -> payload_dict`` lifting ``name`` from ``from_version`` by one."""

    def deco(fn: Upcaster) -> Upcaster:
        (into or registry).add_upcaster(name, from_version, fn)
        return fn

    return deco
