"""JSON values to DynamoDB attribute values and back, index keys, and expression building.

Documents are stored as native DynamoDB attributes (``S``, ``N``, ``BOOL``, ``NULL``, ``L``, ``M``), one
attribute per top-level field, so that conditions and increments run on the server. Numbers travel as their
decimal text: no ``Decimal`` round trip, an ``int`` comes back an ``int`` and a ``float`` a ``float``.

An indexed field gets a shadow attribute ``ix#<field>`` holding a canonical string of its value (a string
``"Aachen"`` is ``'"Aachen"'``, ``None`` is ``'null'``, ``3`` and ``3.0`` are ``'3'``): global secondary
indexes need a top-level scalar key of one declared type, and a document field may hold any JSON value.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import orjson

from pubsubkit.errors import ConfigError

AV = dict[str, Any]
SHADOW_PREFIX = "ix#"
_MAX_KEY = 1024  # bytes of an index key kept verbatim; longer values are keyed by their hash (limit 2048)


def to_av(value: Any) -> AV:
    """A JSON value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"DynamoDB cannot store the number {value!r}")
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [to_av(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_av(v) for k, v in value.items()}}
    raise ConfigError(f"cannot store a value of type {type(value).__name__} in DynamoDB: {value!r}")


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def from_av(av: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as a JSON value."""
    if "S" in av:
        return av["S"]
    if "N" in av:
        return _number(av["N"])
    if "BOOL" in av:
        return bool(av["BOOL"])
    if "NULL" in av:
        return None
    if "L" in av:
        return [from_av(v) for v in av["L"]]
    if "M" in av:
        return {k: from_av(v) for k, v in av["M"].items()}
    if "B" in av:
        return bytes(av["B"])
    if "SS" in av:
        return list(av["SS"])
    if "NS" in av:
        return [_number(n) for n in av["NS"]]
    raise ValueError(f"unsupported DynamoDB attribute value {av!r}")


def item_to_doc(item: Mapping[str, AV]) -> dict[str, Any]:
    """A stored item as the document it holds (shadow attributes left out)."""
    return {k: from_av(v) for k, v in item.items() if not k.startswith(SHADOW_PREFIX)}


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


def index_key(value: Any) -> str:
    """The shadow attribute's value for a field value: equal values (``3`` and ``3.0``) give equal keys."""
    text = orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS).decode()
    if len(text.encode()) > _MAX_KEY:
        return "#sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def shadow(field: str) -> str:
    return SHADOW_PREFIX + field


class Expr:
    """Placeholders of one request's expressions: ``#n0`` for names, ``:v0`` for values."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AV] = {}
        self._by_name: dict[str, str] = {}

    def name(self, attribute: str) -> str:
        ph = self._by_name.get(attribute)
        if ph is None:
            ph = f"#n{len(self._by_name)}"
            self._by_name[attribute] = ph
            self.names[ph] = attribute
        return ph

    def value(self, av: AV) -> str:
        ph = f":v{len(self.values)}"
        self.values[ph] = av
        return ph

    def equals(self, field: str, value: Any) -> str:
        """A condition: ``field`` equals ``value`` (a missing field equals ``None``)."""
        n = self.name(field)
        if value is None:
            return f"(attribute_not_exists({n}) OR attribute_type({n}, {self.value({'S': 'NULL'})}))"
        return f"{n} = {self.value(to_av(value))}"

    def request(self, **parts: Any) -> dict[str, Any]:
        """The keyword arguments of a request, with the placeholders it used."""
        out = {k: v for k, v in parts.items() if v}
        if self.names:
            out["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            out["ExpressionAttributeValues"] = dict(self.values)
        return out
