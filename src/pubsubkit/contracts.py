"""Contract checks: does a change to an event class break the readers of its published schema?

A published contract is the JSON Schema of each event (:func:`pubsubkit.schema.event_schemas`, written to a file
that other teams read), or an AsyncAPI document whose messages carry those schemas. :func:`breaking_changes`
compares it with the classes of today and lists every change a reader of the bus would trip over, unless the
event's schema version went up with an upcaster from each published version:

- a field removed, or its type changed (a reader of the published contract expects it so);
- a field added as required, or an optional field made required (messages already on the bus lack it);
- the version lowered, or raised without an upcaster from the published version;
- an event of the contract no longer registered.

Adding an optional field, or a new event, breaks nothing: readers ignore fields they do not know.

>>> import attrs, pubsubkit
>>> from pubsubkit.schema import event_schemas
>>> reg = pubsubkit.EventRegistry()
>>> @pubsubkit.event("seatTaken", into=reg)
... @attrs.frozen
... class SeatTaken:
...     event_id: str
...     seats: int = 1
>>> published = event_schemas(reg)
>>> @pubsubkit.event("seatTaken", into=reg)
... @attrs.frozen
... class SeatTaken:
...     event_id: str
>>> breaking_changes(published, event_schemas(reg))
['seatTaken: field seats was removed (publish a new version with an upcaster, or keep the field)']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["breaking_changes", "published_schemas"]

_IGNORED = ("description", "title", "$schema", "x-pubsubkit-event", "x-pubsubkit-version", "x-pubsubkit-upcasts-from")
_FIX = "publish a new version with an upcaster, or keep the field"


def published_schemas(contract: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The event schemas of ``contract`` by event name: a mapping of name to schema, or an AsyncAPI document
    (:mod:`pubsubkit.asyncapi`: the ``components.schemas`` marked ``x-pubsubkit-event``, the others being
    the classes nested in them)."""
    if "asyncapi" in contract:
        schemas = contract.get("components", {}).get("schemas", {})
        nested = {k: v for k, v in schemas.items() if "x-pubsubkit-event" not in v}
        return {v["x-pubsubkit-event"]: {**v, "$defs": nested} for v in schemas.values() if "x-pubsubkit-event" in v}
    return {name: dict(schema) for name, schema in contract.items()}


def breaking_changes(published: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What in ``current`` (schemas by event name, or an AsyncAPI document) breaks the readers of ``published``
    (the same forms); empty when nothing does. Each line names the event, the field and the fix."""
    old_all, new_all = published_schemas(published), published_schemas(current)
    out: list[str] = []
    for name, old in sorted(old_all.items()):
        new = new_all.get(name)
        if new is None:
            out.append(f"{name}: the event is no longer registered (register it again, or publish its end)")
            continue
        old_v, new_v = old.get("x-pubsubkit-version", 1), new.get("x-pubsubkit-version", 1)
        if new_v < old_v:
            out.append(f"{name}: schema version {new_v} is older than the published {old_v}")
            continue
        if new_v > old_v:
            lifted = set(new.get("x-pubsubkit-upcasts-from", ()))
            missing = [v for v in range(old_v, new_v) if v not in lifted]
            if missing:
                out.append(
                    f"{name}: schema version {old_v} -> {new_v} without an upcaster from version"
                    f" {', '.join(map(str, missing))} (add @pubsubkit.upcaster({name!r}, {missing[0]}))"
                )
            continue  # a new version with its upcasters may change anything: old payloads are lifted
        out += _object_changes(name, old, new, old.get("$defs", {}), new.get("$defs", {}), set())
    return out


def _object_changes(
    where: str, old: Mapping[str, Any], new: Mapping[str, Any], old_defs: Any, new_defs: Any, seen: set[str]
) -> list[str]:
    out: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", ())), set(new.get("required", ()))
    for field, old_type in old_props.items():
        if field not in new_props:
            out.append(f"{where}: field {field} was removed ({_FIX})")
            continue
        out += _type_changes(f"{where}.{field}", old_type, new_props[field], old_defs, new_defs, seen)
        if field in new_req and field not in old_req:
            out.append(
                f"{where}: field {field} became required: messages without it are on the bus (give it a default)"
            )
    for field in new_props:
        if field not in old_props and field in new_req:
            out.append(
                f"{where}: new field {field} is required: messages without it are on the bus (give it a default)"
            )
    return out


def _type_changes(where: str, old: Any, new: Any, old_defs: Any, new_defs: Any, seen: set[str]) -> list[str]:
    old_ref, new_ref = _ref(old), _ref(new)
    if old_ref is not None and new_ref is not None:
        if old_ref in seen:
            return []
        seen = seen | {old_ref}
        return _object_changes(where, old_defs.get(old_ref, {}), new_defs.get(new_ref, {}), old_defs, new_defs, seen)
    old_n, new_n = _resolved(old, old_defs), _resolved(new, new_defs)
    if old_n.get("type") == "object" and new_n.get("type") == "object" and "properties" in old_n:
        return _object_changes(where, old_n, new_n, old_defs, new_defs, seen)
    if old_n.get("type") == "array" and new_n.get("type") == "array" and "items" in old_n and "items" in new_n:
        return _type_changes(f"{where}[]", old_n["items"], new_n["items"], old_defs, new_defs, seen)
    if _plain(old_n) != _plain(new_n):
        return [f"{where} changed type from {_show(old_n)} to {_show(new_n)} ({_FIX.replace('field', 'old type')})"]
    return []


def _ref(schema: Any) -> str | None:
    ref = schema.get("$ref") if isinstance(schema, Mapping) else None
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _resolved(schema: Any, defs: Any) -> dict[str, Any]:
    ref = _ref(schema)
    if ref is not None:
        return dict(defs.get(ref, {}))
    return dict(schema) if isinstance(schema, Mapping) else {}


def _plain(schema: Any) -> Any:
    """``schema`` without the keys that do not change what a payload may be."""
    if isinstance(schema, Mapping):
        out = {}
        for k, v in schema.items():
            if k in _IGNORED:
                continue
            if k == "items" and isinstance(v, list):  # draft 07's tuple form (an AsyncAPI document's)
                k = "prefixItems"
            if k == "$ref" and isinstance(v, str):  # #/$defs/X and #/components/schemas/X name one class
                v = v.rsplit("/", 1)[-1]
            out[k] = _plain(v)
        return out
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


def _show(schema: Mapping[str, Any]) -> str:
    if "type" in schema:
        fmt = schema.get("format")
        return f"{schema['type']}" + (f" ({fmt})" if fmt else "")
    if "anyOf" in schema:
        return " or ".join(_show(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    return str(_plain(schema))
