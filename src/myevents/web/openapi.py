"""Pieces of the OpenAPI 3.1 documents both services serve at ``/openapi.json``."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AUTH_CODES",
    "BEARER",
    "PROBLEM_CODES",
    "closed",
    "created",
    "document",
    "json_body",
    "json_response",
    "problems",
]

Schema = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"

_PROBLEM: Schema = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:myevents:problem:<kind>, or about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "with 422: each invalid field and why",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}

#: What any route may answer besides its own codes.
PROBLEM_CODES = (503,)
#: What a route taking a JSON body may answer besides.
BODY_CODES = (400, 413, 415, 422)
#: What a route needing a token may answer besides: no valid token, or not this caller's to do.
AUTH_CODES = (401, 403)
#: The name of the bearer security scheme in the documents.
BEARER = "bearerAuth"

_BEARER_SCHEME: Schema = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "HS256, claims sub (the user id), role (organizer or user), iss, exp; aud when configured. "
    "401 without a valid token, 403 when its role or subject may not do this.",
}


def closed(schema: Schema) -> Schema:
    """A response object: every property always there, and no other."""
    return {**schema, "required": list(schema["properties"]), "additionalProperties": False}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _header(description: str) -> Schema:
    return {"required": True, "description": description, "schema": {"type": "string"}}


#: The headers a problem of a status always has.
_PROBLEM_HEADERS: dict[int, dict[str, Schema]] = {
    401: {"WWW-Authenticate": _header('Bearer realm="myevents", with error="invalid_token" for a bad token')},
    503: {"Retry-After": _header("seconds to wait before trying again")},
}


def created(description: str, schema: Schema) -> Schema:
    """A 201 response: the resource, and its path in ``Location``."""
    return {**json_response(description, schema), "headers": {"Location": _header("the path of what was created")}}


def json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def problems(*codes: int) -> dict[str, Schema]:
    out = {}
    for code in sorted({*codes, *PROBLEM_CODES}):
        out[str(code)] = {
            "description": http.HTTPStatus(code).phrase,
            "content": {"application/problem+json": {"schema": ref("Problem")}},
        }
        if code in _PROBLEM_HEADERS:
            out[str(code)]["headers"] = _PROBLEM_HEADERS[code]
    return out


def op(
    summary: str, responses: Mapping[str, Schema], *codes: int, body: Schema | None = None, secured: bool = False
) -> Schema:
    """One operation; a ``body`` adds the request body and the codes a body can cause, ``secured`` the bearer
    token it needs and the 401 and 403 it may answer."""
    extra = (*(BODY_CODES if body else ()), *(AUTH_CODES if secured else ()))
    doc: Schema = {"summary": summary, "responses": {**responses, **problems(*codes, *extra)}}
    if secured:
        doc["security"] = [{BEARER: []}]
    if body is not None:
        doc["requestBody"] = json_body(body)
    return doc


def path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


_OPS_PATHS: Schema = {
    "/health": {"get": {"summary": "Liveness", "responses": {"200": json_response("Alive", {"type": "object"})}}},
    "/ready": {
        "get": {
            "summary": "Readiness: broker, store and background workers",
            "responses": {
                "200": json_response("Ready", ref("Readiness")),
                "503": json_response("Not ready; checks say what failed", ref("Readiness")),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "Text exposition", "content": {"text/plain": {}}}},
        }
    },
    "/openapi.json": {
        "get": {"summary": "This document", "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})}}
    },
    "/asyncapi.json": {
        "get": {
            "summary": "The AsyncAPI 3.0 document of the events this service emits and hears",
            "responses": {"200": json_response("AsyncAPI 3.0", {"type": "object"})},
        }
    },
}

_READINESS: Schema = {
    "type": "object",
    "properties": {
        "status": {"enum": ["ready", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _with_merge_patch(item: Schema) -> Schema:
    """A path item whose PATCH body may also be sent as ``application/merge-patch+json`` (what it is)."""
    patch = item.get("patch")
    if patch is None or "requestBody" not in patch:
        return item
    content = patch["requestBody"]["content"]
    body = {**patch["requestBody"], "content": {**content, MERGE_PATCH: content["application/json"]}}
    return {**item, "patch": {**patch, "requestBody": body}}


def document(title: str, description: str, paths: Mapping[str, Schema], schemas: Mapping[str, Schema]) -> Schema:
    paths = {path: _with_merge_patch(item) for path, item in paths.items()}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0", "description": description},
        "paths": {**paths, **_OPS_PATHS},
        "components": {
            "schemas": {**schemas, "Problem": _PROBLEM, "Readiness": _READINESS},
            "securitySchemes": {BEARER: _BEARER_SCHEME},
        },
    }
