"""An AsyncAPI 3.0 document of an application: the events it emits and the consumer groups that listen.

>>> import attrs, pubsubkit
>>> reg = pubsubkit.EventRegistry()
>>> @pubsubkit.event("orderPlaced", into=reg)
... @attrs.frozen
... class OrderPlaced:
...     order_id: str
>>> broker = pubsubkit.open_broker("memory://shop")
>>> listener = broker.listener("shipping")
>>> listener.add_handler("orderPlaced", lambda event, msg: None)
>>> doc = document("shop", version="1.2.0", broker=broker, emits=[OrderPlaced], listeners=[listener], registry=reg)
>>> sorted(doc["operations"])
['orderPlaced.send', 'shipping.orderPlaced.receive']
>>> broker.close()

Each event is a message of ``components.messages`` whose payload is its JSON Schema
(:func:`pubsubkit.schema.json_schema`, in the AsyncAPI Schema form: JSON Schema draft 07, nested classes in
``components.schemas``) and whose headers are the envelope's (``correlation-id``, ``causation-id``,
``traceparent``, ``schema-version``) with those the broker's wire format adds. Channels follow the broker's
convention (:meth:`pubsubkit.plugin.Transport.channel`): one Kafka topic for every event, a routing key of a
RabbitMQ exchange per event, ... Each emitted event is a ``send`` operation; each consumer group a ``receive``
operation per channel, marked ``x-pubsubkit-group``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pubsubkit.envelope import Header
from pubsubkit.errors import ConfigError
from pubsubkit.events import EventRegistry, registry
from pubsubkit.schema import json_schema
from pubsubkit.transport import Channel

if TYPE_CHECKING:
    from pubsubkit.api import Broker
    from pubsubkit.listener import Listener

__all__ = ["ENVELOPE_HEADERS", "VERSION", "document"]

#: The AsyncAPI version of the documents made here.
VERSION = "3.0.0"

#: The headers of pubsubkit's envelope, on every backend, and what each holds.
ENVELOPE_HEADERS: Mapping[str, str] = {
    Header.CORRELATION_ID: "the id of the conversation: the first event's id, passed on by every event it causes",
    Header.CAUSATION_ID: "the id of the event whose handler emitted this one",
    Header.TRACEPARENT: "the W3C trace context of the span that emitted it",
    Header.SCHEMA_VERSION: "the payload's schema version, when it is not 1",
}


def document(
    title: str,
    *,
    version: str = "1.0.0",
    description: str = "",
    broker: Broker | None = None,
    emits: Iterable[type[Any] | str] = (),
    listeners: Iterable[Listener] = (),
    consumes: Mapping[str, Iterable[type[Any] | str]] | None = None,
    registry: EventRegistry | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of an application that emits ``emits`` (event classes or wire names) and
    listens with ``listeners`` (their groups and the names they have handlers for) or, declared without a
    listener, ``consumes`` (group -> events), on ``broker`` (its servers and channels; without it, one channel
    per event name). ConfigError for an event that is not registered."""
    reg = registry or _default()
    groups: dict[str, list[str]] = {}
    for listener in listeners:
        groups.setdefault(listener.group, []).extend(listener.names)
    for group, events in (consumes or {}).items():
        groups.setdefault(group, []).extend(_name(reg, e) for e in events)
    sent = sorted({_name(reg, e) for e in emits})
    names = sorted({*sent, *(n for ns in groups.values() for n in ns)})
    transport = broker.transport if broker is not None else None
    channels_of = {n: transport.channel(n) if transport is not None else Channel(address=n) for n in names}

    schemas: dict[str, Any] = {}
    messages = {n: _message(reg, n, channels_of[n], schemas) for n in names}
    channels: dict[str, Any] = {}
    key_of: dict[str, str] = {}
    for n in names:
        ch = channels_of[n]
        key = key_of[n] = _key(ch.address)
        entry = channels.setdefault(key, {"address": ch.address, "messages": {}})
        if ch.bindings:
            entry["bindings"] = dict(ch.bindings)
        entry["messages"][n] = {"$ref": f"#/components/messages/{n}"}
    operations: dict[str, Any] = {}
    for n in sent:
        operations[f"{n}.send"] = _operation("send", key_of[n], [n], f"emits {n}")
    for group, handled in sorted(groups.items()):
        by_channel: dict[str, list[str]] = {}
        for n in sorted(set(handled)):
            by_channel.setdefault(key_of[n], []).append(n)
        for key, ns in by_channel.items():
            suffix = ns[0] if len(ns) == 1 else key
            op = _operation("receive", key, ns, f"consumer group {group}")
            op["x-pubsubkit-group"] = group
            operations[f"{group}.{suffix}.receive"] = op
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    doc: dict[str, Any] = {"asyncapi": VERSION, "info": info, "defaultContentType": "application/json"}
    if broker is not None:
        doc["servers"] = {"bus": _server(broker.url)}
    doc["channels"] = channels
    doc["operations"] = operations
    doc["components"] = {"messages": messages, "schemas": dict(sorted(schemas.items()))}
    return doc


def _default() -> EventRegistry:
    return registry


def _name(reg: EventRegistry, event: type[Any] | str) -> str:
    if isinstance(event, str):
        if event not in reg:
            raise ConfigError(f"event {event!r} is not registered: decorate its class with @pubsubkit.event")
        return event
    return reg.name_of(event)


def _key(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", address) or "_"


def _operation(action: str, channel: str, names: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "summary": summary,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names],
    }


def _message(reg: EventRegistry, name: str, channel: Channel, schemas: dict[str, Any]) -> dict[str, Any]:
    et = reg.by_name(name)
    if et is None:
        raise ConfigError(f"event {name!r} is not registered: decorate its class with @pubsubkit.event")
    schema = _draft07(json_schema(et.cls, registry=reg), schemas, name)
    if name in schemas and schemas[name] != schema:
        raise ConfigError(f"event {name!r} and a class nested in an event have one name: rename the class")
    schemas[name] = schema
    payload: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
    if channel.payload_in is not None:
        wrapper: dict[str, Any] = {"type": "object", "required": [channel.payload_in], "properties": {}}
        if channel.name_in is not None:
            wrapper["required"].insert(0, channel.name_in)
            wrapper["properties"][channel.name_in] = {"type": "string", "const": name}
        wrapper["properties"][channel.payload_in] = payload
        payload = wrapper
    headers = {h: {"type": "string", "description": d} for h, d in {**channel.headers, **ENVELOPE_HEADERS}.items()}
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "contentType": "application/json",
        "headers": {"type": "object", "properties": headers},
        "payload": payload,
    }
    if schema.get("description"):
        message["summary"] = schema["description"]
    return message


def _draft07(schema: dict[str, Any], schemas: dict[str, Any], event: str) -> dict[str, Any]:
    """``schema`` (2020-12, from :func:`json_schema`) as an AsyncAPI Schema (draft 07), its ``$defs`` moved to
    ``schemas`` (``components.schemas``) and its references pointed there."""
    body = {k: v for k, v in schema.items() if k not in ("$schema", "$defs")}
    for name, sub in schema.get("$defs", {}).items():
        converted = _rewrite(sub)
        if name in schemas and schemas[name] != converted:
            raise ConfigError(f"event {event!r}: two nested classes called {name} differ: rename one of them")
        schemas[name] = converted
    return _rewrite(body)  # type: ignore[no-any-return]


def _rewrite(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    out = {}
    for k, v in node.items():
        if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
            out[k] = "#/components/schemas/" + v.removeprefix("#/$defs/")
        elif k == "prefixItems":
            out["items"] = _rewrite(v)  # draft 07's tuple form
        else:
            out[k] = _rewrite(v)
    return out


def _server(url: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2] or "localhost"  # hosts and ports as given (Kafka may list several)
    server: dict[str, Any] = {"host": host, "protocol": parts.scheme or "unknown"}
    if parts.path and parts.path != "/":
        server["pathname"] = parts.path
    return server
