"""Untrusted JSON into attrs input models, with every problem of a body reported at once.

An input model is an attrs class whose fields carry their JSON name and a check in their metadata::

    @attrs.frozen
    class HallIn:
        name: str = attrs.field(metadata=spec("name", Text()))
        capacity: int = attrs.field(metadata=spec("capacity", Int(1, 1_000_000)))

Field names match case-insensitively, as Go's encoding/json did for the original services. Unknown fields,
a field given twice, wrong types and out-of-range values become one 422 problem listing each field and reason.
A field without a default is required. :func:`input_schema` describes an input model as the JSON Schema of the
OpenAPI documents, so that what they promise is what the checks do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Protocol, TypeVar

import attrs

from myevents.web.problems import FieldError, Problem
from pubsubkit import WIRE_NAME

__all__ = ["Check", "Ignored", "Int", "Obj", "ReadOnly", "Seq", "Text", "decode", "input_schema", "spec"]

T = TypeVar("T")
CHECK: Final = "myevents.check"


class _Bad:
    """What a check returns after recording an error (a value no field can hold)."""


BAD: Final = _Bad()


class Check(Protocol):
    def __call__(self, value: Any, path: str, errors: list[FieldError]) -> Any:
        """Return the accepted value, or record what is wrong in ``errors`` and return ``BAD``."""

    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema of the values accepted; ``None`` for a field no request may set."""


def spec(name: str, check: Check) -> dict[str, Any]:
    """Field metadata: the JSON name and the check of an input model's field."""
    return {WIRE_NAME: name, CHECK: check}


def _not_blank() -> str:
    """A pattern matching a string with a character that ``str.strip`` keeps, spelled out: ``\\S`` differs
    between regex engines (JavaScript's, Python's, a fuzzer's)."""
    spaces = [c for c in range(0x10000) if chr(c).isspace()]
    ranges: list[tuple[int, int]] = []
    for c in spaces:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return "[^" + "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges) + "]"


_NOT_BLANK: Final = _not_blank()


def _fail(errors: list[FieldError], path: str, reason: str) -> _Bad:
    errors.append({"field": path, "reason": reason})
    return BAD


@attrs.frozen
class Text:
    max_length: int = 200
    allow_empty: bool = False
    pattern: re.Pattern[str] | None = None
    pattern_hint: str = ""

    def __call__(self, value: Any, path: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, str):
            return _fail(errors, path, "must be a string")
        if not value.strip() and not self.allow_empty:
            return _fail(errors, path, "must not be empty")
        if len(value) > self.max_length:
            return _fail(errors, path, f"must be at most {self.max_length} characters")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return _fail(errors, path, f"must be {self.pattern_hint or self.pattern.pattern}")
        return value

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "maxLength": self.max_length}
        if self.pattern is not None:
            out["pattern"] = f"^(?:{self.pattern.pattern})$"
        elif not self.allow_empty:
            out["pattern"] = _NOT_BLANK
        return out


@attrs.frozen
class Int:
    minimum: int
    maximum: int

    def __call__(self, value: Any, path: str, errors: list[FieldError]) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 2.0 and 2e3 are integers to JSON Schema, so to the OpenAPI documents too
        if isinstance(value, bool) or not isinstance(value, int):
            return _fail(errors, path, "must be an integer")
        if not self.minimum <= value <= self.maximum:
            return _fail(errors, path, f"must be between {self.minimum} and {self.maximum}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@attrs.frozen
class Obj:
    """A nested input model."""

    cls: type[Any]

    def __call__(self, value: Any, path: str, errors: list[FieldError]) -> Any:
        return _decode(self.cls, value, path, errors)

    def schema(self) -> dict[str, Any]:
        return input_schema(self.cls)


@attrs.frozen
class Seq:
    item: Check
    max_items: int = 100

    def __call__(self, value: Any, path: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, list):
            return _fail(errors, path, "must be a list")
        if len(value) > self.max_items:
            return _fail(errors, path, f"must have at most {self.max_items} items")
        before = len(errors)
        items = [self.item(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        return BAD if len(errors) > before else items

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema(), "maxItems": self.max_items}


@attrs.frozen
class ReadOnly:
    """A field the representation has but a request may not set."""

    reason: str

    def __call__(self, value: Any, path: str, errors: list[FieldError]) -> Any:
        return _fail(errors, path, self.reason)

    def schema(self) -> None:
        return None


@attrs.frozen
class Ignored:
    """A field accepted for compatibility and otherwise ignored."""

    def __call__(self, value: Any, path: str, errors: list[FieldError]) -> Any:
        return None

    def schema(self) -> dict[str, Any]:
        return {"description": "accepted and ignored"}


def _fields(cls: type[Any]) -> Mapping[str, attrs.Attribute[Any]]:
    return {str(a.metadata[WIRE_NAME]).lower(): a for a in attrs.fields(cls)}


def _decode(cls: type[T], data: Any, path: str, errors: list[FieldError]) -> T | _Bad:
    if not isinstance(data, dict):
        return _fail(errors, path, "must be a JSON object")
    fields = _fields(cls)
    prefix = f"{path}." if path else ""
    before = len(errors)
    given: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key, value in data.items():
        attr = fields.get(key.lower())
        if attr is None:
            _fail(errors, prefix + key, "unknown field")
            continue
        if attr.name in given:
            _fail(errors, prefix + key, f"given twice (as {given[attr.name]!r} too; names are case-insensitive)")
            continue
        given[attr.name] = key
        values[attr.name] = attr.metadata[CHECK](value, prefix + str(attr.metadata[WIRE_NAME]), errors)
    for attr in fields.values():
        if attr.name not in given and attr.default is attrs.NOTHING:
            _fail(errors, prefix + str(attr.metadata[WIRE_NAME]), "is required")
    if len(errors) > before:
        return BAD
    return cls(**values)


def decode(cls: type[T], data: Any) -> T:
    """``data`` (parsed JSON) as an instance of the input model ``cls``; a 422 :class:`Problem` otherwise."""
    errors: list[FieldError] = []
    result = _decode(cls, data, "", errors)
    if isinstance(result, _Bad):
        raise Problem.invalid(errors)
    return result


def input_schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON Schema of what :func:`decode` accepts for ``cls``: its fields by their JSON names (a request may
    spell them in any case), the required ones, and no others."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for attr in attrs.fields(cls):
        name = str(attr.metadata[WIRE_NAME])
        schema = attr.metadata[CHECK].schema()
        if schema is None:
            continue
        properties[name] = schema
        if attr.default is attrs.NOTHING:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    return out
