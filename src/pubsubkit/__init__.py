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
    from pubsubkit.aio import AsyncEmitter as AsyncEmitter
    from pubsubkit.api import Broker as Broker
    from pubsubkit.api import open_broker as open_broker
    from pubsubkit.api import open_store as open_store
    from pubsubkit.batch import Batch as Batch
    from pubsubkit.codec import Codec as Codec
    from pubsubkit.contracts import breaking_changes as breaking_changes
    from pubsubkit.emitter import Emitter as Emitter
    from pubsubkit.envelope import Envelope as Envelope
    from pubsubkit.envelope import Header as Header
    from pubsubkit.envelope import new_id as new_id
    from pubsubkit.errors import AlreadyProcessed as AlreadyProcessed
    from pubsubkit.errors import Closed as Closed
    from pubsubkit.errors import ConditionFailed as ConditionFailed
    from pubsubkit.errors import ConfigError as ConfigError
    from pubsubkit.errors import ConnectionLost as ConnectionLost
    from pubsubkit.errors import DecodeError as DecodeError
    from pubsubkit.errors import DuplicateError as DuplicateError
    from pubsubkit.errors import FatalError as FatalError
    from pubsubkit.errors import NotFound as NotFound
    from pubsubkit.errors import PublishError as PublishError
    from pubsubkit.errors import PubsubkitError as PubsubkitError
    from pubsubkit.errors import UnknownSchemeError as UnknownSchemeError
    from pubsubkit.events import WIRE_NAME as WIRE_NAME
    from pubsubkit.events import EventRegistry as EventRegistry
    from pubsubkit.events import UnknownEvent as UnknownEvent
    from pubsubkit.events import event as event
    from pubsubkit.events import upcaster as upcaster
    from pubsubkit.listener import Listener as Listener
    from pubsubkit.listener import Message as Message
    from pubsubkit.outbox import OutboxRelay as OutboxRelay
    from pubsubkit.plugin.manager import get_plugin_manager as get_plugin_manager
    from pubsubkit.retry import RetryPolicy as RetryPolicy
    from pubsubkit.schema import event_schemas as event_schemas
    from pubsubkit.schema import json_schema as json_schema
    from pubsubkit.store import Collection as Collection
    from pubsubkit.store import Page as Page
    from pubsubkit.store import Store as Store
    from pubsubkit.store import UnitOfWork as UnitOfWork
    from pubsubkit.transport import DeadLetter as DeadLetter
    from pubsubkit.worker import Worker as Worker

__version__ = "0.1.0"

#: Where each name of the application API is defined: the one list (``__all__`` is made from it, and a test
#: checks that the imports above, for type checkers, name the same). They are imported on first use, so that
#: ``import pubsubkit`` (or ``from pubsubkit import ConfigError``) does not load the codec, the listener
#: runtime and their dependencies. What a plugin needs besides is in :mod:`pubsubkit.plugin`.
_LAZY: dict[str, str] = {
    "AsyncEmitter": "pubsubkit.aio",
    "Broker": "pubsubkit.api",
    "open_broker": "pubsubkit.api",
    "open_store": "pubsubkit.api",
    "Batch": "pubsubkit.batch",
    "Codec": "pubsubkit.codec",
    "breaking_changes": "pubsubkit.contracts",
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
    "Listener": "pubsubkit.listener",
    "Message": "pubsubkit.listener",
    "OutboxRelay": "pubsubkit.outbox",
    "get_plugin_manager": "pubsubkit.plugin.manager",
    "RetryPolicy": "pubsubkit.retry",
    "event_schemas": "pubsubkit.schema",
    "json_schema": "pubsubkit.schema",
    "Collection": "pubsubkit.store",
    "Page": "pubsubkit.store",
    "Store": "pubsubkit.store",
    "UnitOfWork": "pubsubkit.store",
    "DeadLetter": "pubsubkit.transport",
    "Worker": "pubsubkit.worker",
}

__all__ = sorted(_LAZY)  # made from the one list above

if not TYPE_CHECKING:
    # A submodule too, as ``pubsubkit.codec`` after ``import pubsubkit``.
    __getattr__ = lazy_attributes(__name__, globals(), _LAZY, submodules=True)
