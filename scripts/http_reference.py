#!/usr/bin/env python3
"""Write docs/http-reference.md from the OpenAPI documents the two myevents services serve.

Run it after changing a route: ``.venv/bin/python scripts/http_reference.py``. A test fails while the page
differs from what this script writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parent.parent / "docs" / "http-reference.md"
METHODS = ("get", "post", "put", "patch", "delete")


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[-1]}`"
    if schema.get("type") == "array" and "items" in schema:
        return f"array of {_schema_name(schema['items'])}"
    return f"`{schema.get('type', 'object')}`"


def _content(obj: dict[str, Any]) -> str:
    for media, spec in obj.get("content", {}).items():
        return f"{_schema_name(spec.get('schema', {}))} (`{media}`)"
    return ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def service_markdown(doc: dict[str, Any]) -> list[str]:
    info = doc["info"]
    out = [f"## {info['title']}", "", _cell(info.get("description", "")), ""]
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            out += [f"### `{method.upper()} {path}`", "", _cell(op.get("summary", "")), ""]
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            if params:
                out += ["| parameter | in | description |", "|---|---|---|"]
                out += [f"| `{p['name']}` | {p['in']} | {_cell(p.get('description', ''))} |" for p in params]
                out.append("")
            if "requestBody" in op:
                out += [f"Body: {_content(op['requestBody'])}", ""]
            out += ["| status | meaning | body |", "|---|---|---|"]
            for status, resp in op.get("responses", {}).items():
                out.append(f"| {status} | {_cell(resp.get('description', ''))} | {_content(resp)} |")
            out.append("")
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        out += [f"### Schemas of the {info['title']}", ""]
        for name, schema in schemas.items():
            out += [f"#### `{name}`", "", "```json", json.dumps(schema, indent=2), "```", ""]
    return out


def page() -> str:
    from myevents.booking.openapi import document as booking_document
    from myevents.events.openapi import document as events_document

    lines = [
        "# HTTP reference",
        "",
        "Generated from the OpenAPI documents the services serve at `/openapi.json` (run",
        "`.venv/bin/python scripts/http_reference.py` after changing a route). Errors are JSON problem details",
        "(`application/problem+json`); see [myevents](myevents.md#errors).",
        "",
    ]
    for doc in (events_document(), booking_document()):
        lines += service_markdown(doc)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    PAGE.write_text(page(), encoding="utf-8")
    print(f"wrote {PAGE}")
