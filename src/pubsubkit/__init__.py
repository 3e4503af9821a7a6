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
