"""Where gunicorn meets the services: what it answers by itself, and connections whose request body was not read.

- **Refusals gunicorn makes itself** (a header or request line too long, a bad Content-Length, Content-Length
  with Transfer-Encoding...) are written by ``gunicorn.util.write_error`` as HTML. gunicorn has no hook for that
  page, so each worker replaces the function with :func:`write_problem`: the same status, as a problem document
  like every other error of the services.
- **A request answered before its body was read** (a 401, 413 or 415 does not read it) leaves the rest of the
  body in the connection; gunicorn then drops the connection, although the response said ``keep-alive``, and a
  client's next request on it fails. :func:`close_unread` makes such a response say ``Connection: close``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn import util  # type: ignore[import-untyped]

__all__ = ["BodyCounter", "close_unread", "install_problem_pages", "write_problem"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error page, as ``application/problem+json`` (the signature of ``gunicorn.util.write_error``)."""
    body = json.dumps({"type": "about:blank", "title": reason, "status": status_int, "detail": mesg or reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


def install_problem_pages() -> None:
    """Make gunicorn write its own refusals with :func:`write_problem` (in this process)."""
    util.write_error = write_problem


class BodyCounter:
    """``wsgi.input``, counting what the application read of it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.read_bytes = 0
        self.at_end = False

    def _seen(self, data: bytes, asked: int | None = None) -> bytes:
        self.read_bytes += len(data)
        if not data or (asked is not None and asked > 0 and len(data) < asked):
            self.at_end = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._seen(self.stream.read(size) if size is not None else self.stream.read(), size)

    def readline(self, size: int | None = -1) -> bytes:
        data = self.stream.readline(size) if size is not None else self.stream.readline()
        return self._seen(data)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = self.stream.readlines(hint)
        for line in lines:
            self._seen(line)
        return lines

    def __iter__(self) -> Any:
        for line in self.stream:
            yield self._seen(line)


def _unread(environ: dict[str, Any], counter: BodyCounter) -> bool:
    """Whether the request had a body the application left (partly) unread."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            return counter.read_bytes < int(length)
        except ValueError:
            return True
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked and not counter.at_end


def close_unread(app: WSGIApp) -> WSGIApp:
    """``app``, answering ``Connection: close`` when it responded without reading the whole request body.

    gunicorn passes its response's ``start_response``; ``force_close()`` on that response (before the headers
    are sent, which happens at the first write after the application returned) makes it say so and close.
    """

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        counter = BodyCounter(environ["wsgi.input"])
        environ["wsgi.input"] = counter
        result = app(environ, start_response)
        if _unread(environ, counter):
            response = getattr(start_response, "__self__", None)
            force_close = getattr(response, "force_close", None)
            if callable(force_close) and not getattr(response, "headers_sent", False):
                force_close()
        return result

    return wrapped
