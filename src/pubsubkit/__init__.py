"""pubsubkit: emit domain events, listen to them, and persist state, on the backend the operator picks.

>>> import attrs, pubsubkit
>>> @pubsubkit.event("greeted")
... @attrs.frozen
... class Greeted:
...     who: str
>>> broker = pubsubkit.open_broker("memory://")
>>> listener = broker.listener("greeter")
>>> @listener.on(Greeted)
... def hello(event, msg):
...     print("hello", event.who)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pubsubkit.lazy import lazy_attributes

if TYPE_CHECKING:
    from pubsubkit.api import Broker, open_broker, open_store
    from pubsubkit.codec import Codec
    from pubsubkit.emitter import Emitter
    from pubsubkit.envelope import Envelope, Header, new_id
    from pubsubkit.errors import (
        AlreadyProcessed,
        Closed,
        ConditionFailed,
        ConfigError,
        ConnectionLost,
        DecodeError,
        DuplicateError,
        FatalError,
        NotFound,
        PublishError,
        PubsubkitError,
        UnknownSchemeError,
    )
    from pubsubkit.events import WIRE_NAME, EventRegistry, UnknownEvent, event, upcaster
    from pubsubkit.hookspecs import NAME, hookimpl
    from pubsubkit.listener import Listener, Message
    from pubsubkit.outbox import OutboxRelay
    from pubsubkit.registry import BrokerSpec, StoreSpec, get_plugin_manager
    from pubsubkit.retry import RetryPolicy
    from pubsubkit.store import Collection, Page, Store, UnitOfWork
    from pubsubkit.transport import Capabilities, Consumer, DeadLetter, Delivery, Transport

__version__ = "0.1.0"

__all__ = [
    "NAME",
    "WIRE_NAME",
    "AlreadyProcessed",
    "Broker",
    "BrokerSpec",
    "Capabilities",
    "Closed",
    "Codec",
    "Collection",
    "ConditionFailed",
    "ConfigError",
    "ConnectionLost",
    "Consumer",
    "DeadLetter",
    "DecodeError",
    "Delivery",
    "DuplicateError",
    "Emitter",
    "Envelope",
    "EventRegistry",
    "FatalError",
    "Header",
    "Listener",
    "Message",
    "NotFound",
    "OutboxRelay",
    "Page",
    "PublishError",
    "PubsubkitError",
    "RetryPolicy",
    "Store",
    "StoreSpec",
    "Transport",
    "UnitOfWork",
    "UnknownEvent",
    "UnknownSchemeError",
    "event",
    "get_plugin_manager",
    "hookimpl",
    "new_id",
    "open_broker",
    "open_store",
    "upcaster",
]

#: Where each public name is defined. They are imported on first use, so that ``import pubsubkit`` (or
#: ``from pubsubkit import ConfigError``) does not load the codec, the listener runtime and their dependencies.
_LAZY: dict[str, str] = {
    "Broker": "pubsubkit.api",
    "open_broker": "pubsubkit.api",
    "open_store": "pubsubkit.api",
    "Codec": "pubsubkit.codec",
    "Emitter": "pubsubkit.emitter",
    "Envelope": "pubsubkit.envelope",
    "Header": "pubsubkit.envelope",
    "new_id": "pubsubkit.envelope",
    "AlreadyProcessed": "pubsubkit.errors",
    "Closed": "pubsubkit.errors",
    "ConditionFailed": "pubsubkit.errors",
    "ConfigError": "pubsubkit.errors",
    "ConnectionLost": "pubsubkit.errors",
    "DecodeError": "pubsubkit.errors",
    "DuplicateError": "pubsubkit.errors",
    "FatalError": "pubsubkit.errors",
    "NotFound": "pubsubkit.errors",
    "PublishError": "pubsubkit.errors",
    "PubsubkitError": "pubsubkit.errors",
    "UnknownSchemeError": "pubsubkit.errors",
    "WIRE_NAME": "pubsubkit.events",
    "EventRegistry": "pubsubkit.events",
    "UnknownEvent": "pubsubkit.events",
    "event": "pubsubkit.events",
    "upcaster": "pubsubkit.events",
    "NAME": "pubsubkit.hookspecs",
    "hookimpl": "pubsubkit.hookspecs",
    "Listener": "pubsubkit.listener",
    "Message": "pubsubkit.listener",
    "OutboxRelay": "pubsubkit.outbox",
    "BrokerSpec": "pubsubkit.registry",
    "StoreSpec": "pubsubkit.registry",
    "get_plugin_manager": "pubsubkit.registry",
    "RetryPolicy": "pubsubkit.retry",
    "Collection": "pubsubkit.store",
    "Page": "pubsubkit.store",
    "Store": "pubsubkit.store",
    "UnitOfWork": "pubsubkit.store",
    "Capabilities": "pubsubkit.transport",
    "Consumer": "pubsubkit.transport",
    "DeadLetter": "pubsubkit.transport",
    "Delivery": "pubsubkit.transport",
    "Transport": "pubsubkit.transport",
}

if not TYPE_CHECKING:
    # A submodule too, as ``pubsubkit.codec`` after ``import pubsubkit``.
    __getattr__ = lazy_attributes(__name__, globals(), _LAZY, submodules=True)
