"""The JSON Schema of event types (pubsubkit.schema), the contract check, and ``pubsubkit schema``."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import attrs
import jsonschema_rs
import pytest

import pubsubkit
from pubsubkit.codec import Codec
from pubsubkit.schema import DIALECT, event_schemas, json_schema


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Seat:
    """A seat in a row."""

    row: int
    number: int = 1


def registry_with_everything() -> tuple[pubsubkit.EventRegistry, type]:
    reg = pubsubkit.EventRegistry()

    @pubsubkit.event("everything", version=3, into=reg)
    @attrs.frozen
    class Everything:
        """Every kind of field."""

        name: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "Name"})
        count: int
        ratio: float
        ok: bool
        at: datetime
        day: date
        ref: uuid.UUID
        colour: Colour
        kind: Literal["a", "b"]
        seats: list[Seat]
        pair: tuple[int, str]
        tags: frozenset[str]
        scores: dict[str, float]
        maybe: int | None = None
        nested: Seat | None = None

    reg.add_upcaster("everything", 1, lambda p: p)
    reg.add_upcaster("everything", 2, lambda p: p)
    return reg, Everything


def test_every_field_kind_has_its_json_form() -> None:
    reg, cls = registry_with_everything()
    s = json_schema(cls, registry=reg)
    assert s["$schema"] == DIALECT
    assert s["title"] == "everything"
    assert s["description"] == "Every kind of field."
    p = s["properties"]
    assert p["Name"] == {"type": "string"}
    assert "name" not in p
    assert p["count"] == {"type": "integer"}
    assert p["ratio"] == {"type": "number"}
    assert p["ok"] == {"type": "boolean"}
    assert p["at"] == {"type": "string", "format": "date-time"}
    assert p["day"] == {"type": "string", "format": "date"}
    assert p["ref"] == {"type": "string", "format": "uuid"}
    assert p["colour"] == {"enum": ["red", "blue"]}
    assert p["kind"] == {"enum": ["a", "b"]}
    assert p["seats"] == {"type": "array", "items": {"$ref": "#/$defs/Seat"}}
    assert p["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert p["tags"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert p["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert p["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert s["$defs"]["Seat"]["required"] == ["row"]
    assert s["$defs"]["Seat"]["description"] == "A seat in a row."
    assert "maybe" not in s["required"]
    assert "Name" in s["required"]
    assert s["x-pubsubkit-version"] == 3
    assert s["x-pubsubkit-upcasts-from"] == [1, 2]
    jsonschema_rs.meta.validate(s)  # a valid schema of its dialect


def test_the_schema_accepts_what_the_codec_writes_and_refuses_a_payload_without_a_required_field() -> None:
    reg, cls = registry_with_everything()
    event = cls(
        name="n", count=1, ratio=0.5, ok=True, at=datetime.now(UTC), day=date(2026, 1, 2),
        ref=uuid.uuid4(), colour=Colour.RED, kind="a", seats=[Seat(1, 2)], pair=(1, "x"), tags=frozenset({"t"}),
        scores={"a": 1.0}, nested=Seat(3),
    )  # fmt: skip
    payload = json.loads(Codec(reg).encode(event)[1])
    validator = jsonschema_rs.Draft202012Validator(json_schema(cls, registry=reg), validate_formats=True)
    validator.validate(payload)
    del payload["count"]
    with pytest.raises(jsonschema_rs.ValidationError, match='"count" is a required property'):
        validator.validate(payload)


def test_a_field_type_without_a_json_form_is_named() -> None:
    reg = pubsubkit.EventRegistry()

    @pubsubkit.event("odd", into=reg)
    @attrs.frozen
    class Odd:
        by_number: dict[int, str]

    with pytest.raises(TypeError, match=r"odd.by_number: a mapping's keys must be str"):
        json_schema(Odd, registry=reg)


def test_an_unregistered_class_is_a_config_error() -> None:
    with pytest.raises(pubsubkit.ConfigError, match=r"decorate it with @pubsubkit\.event"):
        json_schema(Seat, registry=pubsubkit.EventRegistry())


def test_event_schemas_are_by_name_and_sorted() -> None:
    reg, _ = registry_with_everything()
    pubsubkit.event("aFirst", into=reg)(attrs.frozen(type("AFirst", (), {"__annotations__": {"x": "int"}})))
    assert list(event_schemas(reg)) == ["aFirst", "everything"]


def test_the_schema_command_writes_and_checks_a_contract(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(
        "import attrs, pubsubkit\n"
        "reg = pubsubkit.EventRegistry()\n"
        "@pubsubkit.event('orderPlaced', into=reg)\n"
        "@attrs.frozen\n"
        "class OrderPlaced:\n"
        "    id: str\n"
        "    total: int\n"
    )

    def schema(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pubsubkit", "schema", *args], cwd=tmp_path, capture_output=True, text=True
        )

    contract = tmp_path / "contract.json"
    assert schema("shop:reg", "--out", str(contract)).returncode == 0
    assert list(json.loads(contract.read_text())) == ["orderPlaced"]
    ok = schema("shop:reg", "--check", str(contract))
    assert ok.returncode == 0
    assert "0 breaking change(s)" in ok.stdout
    (tmp_path / "shop.py").write_text((tmp_path / "shop.py").read_text().replace("    total: int\n", ""))
    broken = schema("shop:reg", "--check", str(contract))
    assert broken.returncode == 1
    assert "breaking: orderPlaced: field total was removed" in broken.stdout
    missing = schema("shop:reg", "--check", str(tmp_path / "nothing.json"))
    assert missing.returncode == 2
    assert "write it first with --out" in missing.stderr
