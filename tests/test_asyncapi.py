"""AsyncAPI 3.0 documents (pubsubkit.asyncapi), validated against the official JSON Schema of AsyncAPI 3.0.0
(tests/asyncapi, from the @asyncapi/specs package), and ``pubsubkit asyncapi``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import jsonschema_rs
import pytest

import pubsubkit
from pubsubkit.asyncapi import document
from pubsubkit.contracts import breaking_changes
from pubsubkit.schema import event_schemas

SPEC = Path(__file__).parent / "asyncapi" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def spec() -> Any:
    return jsonschema_rs.validator_for(json.loads(SPEC.read_text()))


def errors(spec: Any, doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}"[:300] for e in spec.iter_errors(doc)]


reg = pubsubkit.EventRegistry()


@attrs.frozen
class Line:
    sku: str
    qty: int = 1


@pubsubkit.event("orderPlaced", version=2, into=reg)
@attrs.frozen
class OrderPlaced:
    """An order, as confirmed."""

    order_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "orderId"})
    lines: list[Line]
    pair: tuple[int, str] = (0, "")


@pubsubkit.event("orderShipped", into=reg)
@attrs.frozen
class OrderShipped:
    order_id: str


reg.add_upcaster("orderPlaced", 1, lambda p: p)


@pytest.fixture(params=["memory", "sqlite"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[pubsubkit.Broker]:
    url = "memory://asyncapi" if request.param == "memory" else f"sqlite:///{tmp_path}/bus.db"
    with pubsubkit.open_broker(url, codec=pubsubkit.Codec(reg)) as b:
        yield b


def shop(broker: pubsubkit.Broker) -> dict[str, Any]:
    shipping = broker.listener("shipping")
    shipping.add_handler(OrderPlaced, lambda e, m: None)
    billing = broker.listener("billing")
    billing.add_handler(OrderPlaced, lambda e, m: None)
    billing.add_handler(OrderShipped, lambda e, m: None)
    return document(
        "shop", version="2.1.0", description="Orders.", broker=broker, emits=[OrderPlaced, "orderShipped"],
        listeners=[shipping, billing], registry=reg,
    )  # fmt: skip


def test_the_document_is_valid_asyncapi_3(spec: Any, broker: pubsubkit.Broker) -> None:
    doc = shop(broker)
    assert errors(spec, doc) == []
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"] == {"title": "shop", "version": "2.1.0", "description": "Orders."}
    assert sorted(doc["operations"]) == [
        "billing.orderPlaced.receive",
        "billing.orderShipped.receive",
        "orderPlaced.send",
        "orderShipped.send",
        "shipping.orderPlaced.receive",
    ]
    assert doc["operations"]["billing.orderShipped.receive"]["x-pubsubkit-group"] == "billing"
    assert doc["channels"]["orderPlaced"]["address"] == "orderPlaced"
    message = doc["components"]["messages"]["orderPlaced"]
    assert message["summary"] == "An order, as confirmed."
    assert set(message["headers"]["properties"]) >= {"correlation-id", "causation-id", "traceparent", "schema-version"}
    schema = doc["components"]["schemas"]["orderPlaced"]
    assert schema["properties"]["lines"]["items"] == {"$ref": "#/components/schemas/Line"}
    assert schema["properties"]["pair"]["items"] == [{"type": "integer"}, {"type": "string"}]  # draft 07's tuple
    assert schema["x-pubsubkit-version"] == 2
    assert doc["components"]["schemas"]["Line"]["required"] == ["sku"]


def test_the_validation_refuses_a_broken_document(spec: Any, broker: pubsubkit.Broker) -> None:
    doc = shop(broker)
    doc["operations"]["orderPlaced.send"]["action"] = "publish"  # AsyncAPI 2's word
    del doc["info"]["version"]
    found = errors(spec, doc)
    assert any("operations/orderPlaced.send" in e for e in found), found
    assert any('"version" is a required property' in e for e in found), found


def test_payloads_the_codec_writes_validate_against_their_message_schema(broker: pubsubkit.Broker) -> None:
    doc = shop(broker)
    for event in (OrderPlaced("o-1", [Line("s-1", 2)], (1, "x")), OrderShipped("o-1")):
        name, payload, _ = broker.codec.encode(event)
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        jsonschema_rs.Draft7Validator(schema).validate(json.loads(payload))
    with pytest.raises(jsonschema_rs.ValidationError, match="required property"):
        jsonschema_rs.Draft7Validator(
            {"$ref": "#/components/schemas/orderPlaced", "components": doc["components"]}
        ).validate({"lines": []})


def test_the_document_is_a_contract_the_check_reads(broker: pubsubkit.Broker) -> None:
    doc = shop(broker)
    assert breaking_changes(doc, event_schemas(reg)) == []
    smaller = pubsubkit.EventRegistry()
    pubsubkit.event("orderPlaced", version=2, into=smaller)(OrderPlaced)
    assert breaking_changes(doc, event_schemas(smaller)) == [
        "orderShipped: the event is no longer registered (register it again, or publish its end)"
    ]


def test_an_unregistered_event_is_named(broker: pubsubkit.Broker) -> None:
    with pytest.raises(pubsubkit.ConfigError, match="event 'nothing' is not registered"):
        document("shop", broker=broker, emits=["nothing"], registry=reg)


def test_the_asyncapi_command_prints_the_document(tmp_path: Path) -> None:
    (tmp_path / "shopdoc.py").write_text(
        "import pubsubkit, attrs\n"
        "from pubsubkit.asyncapi import document\n"
        "@pubsubkit.event('cartEmptied')\n"
        "@attrs.frozen\n"
        "class CartEmptied:\n"
        "    cart: str\n"
        "def doc():\n"
        "    return document('carts', emits=[CartEmptied])\n"
        "not_a_doc = 3\n"
    )

    def asyncapi(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pubsubkit", "asyncapi", target], cwd=tmp_path, capture_output=True, text=True
        )

    ok = asyncapi("shopdoc:doc")
    assert ok.returncode == 0, ok.stderr
    assert list(json.loads(ok.stdout)["operations"]) == ["cartEmptied.send"]
    bad = asyncapi("shopdoc:not_a_doc")
    assert bad.returncode == 2
    assert "shopdoc:not_a_doc gave int" in bad.stderr
