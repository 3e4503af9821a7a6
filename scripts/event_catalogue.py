#!/usr/bin/env python3
"""Write docs/events.md, the catalogue of the events myevents exchanges, from the AsyncAPI documents its two
services serve (``myevents.asyncapi``): each event's fields, its schema version, who emits it and which
consumer groups hear it. Run it after changing an event: ``.venv/bin/python scripts/event_catalogue.py``; a test
fails while the page differs from what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "events.md"
sys.path.insert(0, str(ROOT / "src"))

from myevents.booking.app import asyncapi as booking_document  # noqa: E402
from myevents.events.app import asyncapi as events_document  # noqa: E402

INTRO = """\
# Event catalogue

The events the two myevents services exchange, made from the AsyncAPI 3.0 documents they serve at
`GET /asyncapi.json` (`scripts/event_catalogue.py` writes this page; a test fails when it is stale). Each
payload is JSON; a field without a default is required, and a reader ignores fields it does not know, so a new
optional field breaks no one ([event contracts](contracts.md)). The JSON Schema of every event is in
[`contracts/myevents-events.json`](contracts/myevents-events.json).

Where the events travel depends on the broker: on Kafka every event is a record of one topic, its value
`{"eventName": name, "payload": {...}}`; on RabbitMQ the event's name is the routing key of the topic exchange
`events` and the body is the payload; on SQS the message attribute `event_name` names it, on SQLite a column of the log.
"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"[{schema['$ref'].rsplit('/', 1)[-1]}](#{schema['$ref'].rsplit('/', 1)[-1].lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, list):
            return "array of " + ", ".join(_type(i) for i in items)
        return f"array of {_type(items)}" if items else "array"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _fields(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", ()))
    rows = ["| field | type | required |", "|---|---|---|"]
    for name, sub in schema.get("properties", {}).items():
        rows.append(f"| `{name}` | {_type(sub)} | {'yes' if name in required else 'no'} |")
    return rows


def page() -> str:
    docs = {"event service": events_document(), "booking service": booking_document()}
    emitted: dict[str, list[str]] = {}
    heard: dict[str, list[str]] = {}
    schemas: dict[str, Any] = {}
    for service, doc in docs.items():
        schemas.update(doc["components"]["schemas"])
        for op in doc["operations"].values():
            for ref in op["messages"]:
                name = ref["$ref"].rsplit("/", 1)[-1]
                if op["action"] == "send":
                    emitted.setdefault(name, []).append(service)
                else:
                    heard.setdefault(name, []).append(f"group `{op['x-pubsubkit-group']}` ({service})")
    events = sorted(n for n, s in schemas.items() if "x-pubsubkit-event" in s)
    nested = sorted(n for n, s in schemas.items() if "x-pubsubkit-event" not in s)
    out = [INTRO, "| event | emitted by | heard by |", "|---|---|---|"]
    for name in events:
        out.append(
            f"| [`{name}`](#{name.lower()}) | {', '.join(emitted.get(name, ['-']))} |"
            f" {', '.join(heard.get(name, ['-']))} |"
        )
    for name in events:
        schema = schemas[name]
        out += ["", f"## {name}", ""]
        if schema.get("description"):
            out += [schema["description"], ""]
        out += [f"Schema version {schema['x-pubsubkit-version']}.", ""]
        out += _fields(schema)
    for name in nested:
        out += ["", f"## {name}", "", "A part of the events above.", ""]
        out += _fields(schemas[name])
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    PAGE.write_text(page(), encoding="utf-8")
    print(f"wrote {PAGE}")
