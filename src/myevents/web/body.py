"""Reading a JSON request body: content type, size limit, completeness, well-formedness, no key given twice.
Nothing else reads bodies."""

from __future__ import annotations

import json
from typing import Any

import falcon
import orjson

from myevents.config import DEFAULT_MAX_BODY
from myevents.web.problems import Problem

__all__ = ["DEFAULT_MAX_BODY", "JSON_TYPES", "json_body"]

#: Media types accepted for request bodies (``application/merge-patch+json`` is what a PATCH is).
JSON_TYPES = frozenset({"application/json", "application/merge-patch+json"})


def json_body(req: falcon.Request) -> Any:
    """The parsed JSON body of ``req``.

    Raises a :class:`Problem`: 413 when the body (by its Content-Length, or by what was actually sent) exceeds
    ``req.context.max_body``, 415 for another content type, 400 for an empty, cut-off (fewer bytes than its
    Content-Length) or malformed body, 422 for an object that gives one key twice (JSON leaves that undefined;
    the last one would silently win).
    """
    limit: int = getattr(req.context, "max_body", DEFAULT_MAX_BODY)
    too_large = Problem(413, f"the request body exceeds {limit} bytes", kind="too-large")
    length = req.content_length
    if length is not None and length > limit:
        raise too_large
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES:
        got = f"got {media_type!r}" if media_type else "no Content-Type was sent"
        raise Problem(415, f"send the body as application/json ({got})", kind="unsupported-media-type")
    if length is None and req.env.get("wsgi.input_terminated"):
        # A chunked body has no Content-Length; servers that mark their input terminated (gunicorn does) end
        # the stream with the body, so it can be read up to the limit without blocking.
        data = req.stream.read(limit + 1)
    else:
        data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise too_large
    if length is not None and len(data) < length:
        raise Problem(
            400,
            f"the request body ended after {len(data)} of the {length} bytes its Content-Length announced",
            kind="malformed",
        )
    if not data.strip():
        raise Problem(400, "the request body is empty; send a JSON object", kind="malformed")
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"malformed JSON: {exc}", kind="malformed") from None
    if isinstance(parsed, dict | list) and data.count(b'"') >= 4:
        duplicates = _duplicate_keys(data)
        if duplicates:
            raise Problem.invalid([{"field": path, "reason": "given twice"} for path in duplicates])
    return parsed


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the keys it was given more than once."""

    repeated: list[str]


def _object(items: list[tuple[str, Any]]) -> _Object:
    obj = _Object(items)
    seen: set[str] = set()
    obj.repeated = []
    for key, _ in items:
        if key in seen and key not in obj.repeated:
            obj.repeated.append(key)
        seen.add(key)
    return obj


def _duplicate_keys(data: bytes) -> list[str]:
    """The paths (``Halls[0].name``) of the keys an object of ``data`` (well-formed JSON) gives more than once."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, _Object):
            found.extend(f"{path}.{key}" if path else key for key in node.repeated)
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(json.loads(data, object_pairs_hook=_object), "")
    return found
