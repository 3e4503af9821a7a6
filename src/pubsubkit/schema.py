"""JSON Schema of event types, derived from their attrs classes: what a reader of the bus may rely on.

>>> import attrs, pubsubkit
>>> reg = pubsubkit.EventRegistry()
>>> @pubsubkit.event("seatTaken", version=2, into=reg)
... @attrs.frozen
... class SeatTaken:
...     event_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "eventId"})
...     seats: int = 1
>>> schema = json_schema(SeatTaken, registry=reg)
>>> schema["required"], sorted(schema["properties"]), schema["x-pubsubkit-version"]
(['eventId'], ['eventId', 'seats'], 2)

The schema describes the payload as the codec writes it (:mod:`pubsubkit.codec`): fields under their wire names
(``WIRE_NAME``), a field without a default is required, and other keys are allowed, since a reader of the bus
ignores fields a newer writer added. The event's name and schema version are in ``x-pubsubkit-event`` and
``x-pubsubkit-version``; the older versions an upcaster lifts to this one are in ``x-pubsubkit-upcasts-from``.
"""

from __future__ import annotations

import collections.abc
import datetime
import decimal
import enum
import types
import typing
import uuid
from typing import Any

import attrs

from pubsubkit.events import WIRE_NAME, EventRegistry, EventType, registry

__all__ = ["DIALECT", "event_schemas", "json_schema"]

#: The JSON Schema dialect of the schemas made here.
DIALECT = "https://json-schema.org/draft/2020-12/schema"

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    decimal.Decimal: {"type": "string"},
    bytes: {"type": "string", "contentEncoding": "base85"},
    type(None): {"type": "null"},
    Any: {},
    object: {},
}
_ARRAYS = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set, collections.abc.MutableSet)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def json_schema(event_type: type[Any], *, registry: EventRegistry | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of registered event class ``event_type``'s payload, self-contained (nested
    classes in ``$defs``). Raises ConfigError for an unregistered class, TypeError for a field type with no
    JSON form, naming the field."""
    et = (registry or _default()).by_class(event_type)
    return _event_schema(et)


def event_schemas(registry: EventRegistry | None = None) -> dict[str, dict[str, Any]]:
    """The schema of every event type of ``registry`` (default: pubsubkit's), by wire name, sorted."""
    return {et.name: _event_schema(et) for et in sorted(registry or _default(), key=lambda et: et.name)}


def _default() -> EventRegistry:
    return registry


def _event_schema(et: EventType) -> dict[str, Any]:
    defs: dict[str, dict[str, Any]] = {}
    body = _object(et.cls, defs, et.name)
    schema: dict[str, Any] = {"$schema": DIALECT, "title": et.name}
    doc = _description(et.cls)
    if doc:
        schema["description"] = doc
    schema.update(body)
    schema["x-pubsubkit-event"] = et.name
    schema["x-pubsubkit-version"] = et.version
    schema["x-pubsubkit-upcasts-from"] = sorted(v for v in et.upcasters if v < et.version)
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def _description(cls: type[Any]) -> str:
    doc = cls.__doc__ or ""
    if not doc or doc.startswith(f"{cls.__name__}("):  # attrs' generated repr-like docstring
        return ""
    return " ".join(doc.split()).replace("``", "`")  # reStructuredText's literals as Markdown's


def _object(cls: type[Any], defs: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for a in attrs.fields(cls):
        if not a.init:
            continue
        wire = a.metadata.get(WIRE_NAME, a.alias or a.name)
        properties[wire] = _type(hints.get(a.name, a.type), defs, f"{where}.{a.name}")
        if a.default is attrs.NOTHING:
            required.append(wire)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _type(tp: Any, defs: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [_type(a, defs, where) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Annotated:
        return _type(args[0], defs, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if attrs.has(tp) and isinstance(tp, type):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # a placeholder first: a class that refers to itself ends here
            body = _object(tp, defs, name)
            doc = _description(tp)
            defs[name] = {"description": doc, **body} if doc else body
        return {"$ref": f"#/$defs/{name}"}
    container = origin or tp
    if container in _ARRAYS:
        if container is tuple and args and args[-1] is not Ellipsis:
            items = [_type(a, defs, where) for a in args]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        schema: dict[str, Any] = {"type": "array"}
        if args:
            schema["items"] = _type(args[0], defs, where)
        if container in (set, frozenset, collections.abc.Set, collections.abc.MutableSet):
            schema["uniqueItems"] = True
        return schema
    if container in _MAPPINGS:
        if args and args[0] is not str:
            raise TypeError(f"{where}: a mapping's keys must be str to have a JSON form, not {args[0]!r}")
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = _type(args[1], defs, where)
        return schema
    raise TypeError(
        f"{where}: the type {tp!r} has no JSON Schema here; use str, int, float, bool, datetime, date, UUID,"
        " an enum, an attrs class, or a list, tuple, set or dict[str, ...] of those"
    )
