"""Where gunicorn meets the services: what it answers by itself, and connections whose request body was not read.

- **Refusals gunicorn makes itself** (a header or request line too long, a bad Content-Length, Content-Length
  with Transfer-Encoding...) are written by ``gunicorn.util.write_error`` as HTML. gunicorn has no hook for that
  page, so each worker replaces the function with :func:`write_problem`: the same status, as a problem document
  like every other error of the services.
- **A request answered before its body was read** (a 401, 413 or 415 does not read it) leaves the rest of the
  body in the connection; gunicorn then drops the connection, although the response said ``keep-alive``, and a
  client's next request on it fails. :func:`close_unread` makes such a response say ``Connection: close``.
- **Slow clients.** gunicorn's threaded worker gives a connection a thread as soon as its first bytes arrive,
  and the thread then waits for the rest: a few clients sending slowly hold every thread, and ``/health``
  waits behind them. :class:`BufferingWorker` reads each request (its head, and a body up to the services'
  limit) in the worker's event loop, without a thread, and hands it to a thread only once it is all there; a
  request not complete within :data:`READ_TIMEOUT` seconds is answered 408 and closed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import selectors
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

from myevents.config import DEFAULT_MAX_BODY

__all__ = [
    "READ_TIMEOUT",
    "BodyCounter",
    "BufferingWorker",
    "close_unread",
    "install_problem_pages",
    "request_complete",
    "write_problem",
]

#: Seconds a client has to send a whole request (head and body) before it is answered 408 and closed.
READ_TIMEOUT = 30.0
#: The most of a request head buffered before it is handed over anyway (gunicorn's parser then refuses it).
MAX_HEAD = 64 * 1024
_LENGTH = re.compile(rb"^content-length:[ \t]*([^\r]*)\r$", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding:[^\r]*chunked", re.I | re.M)

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


def request_complete(buf: bytes | bytearray, max_body: int = DEFAULT_MAX_BODY) -> bool:
    """Whether ``buf`` holds a whole request (or as much as the services would read of it).

    The head ends with an empty line; then a ``Content-Length`` body is complete at that length, a chunked one
    at its last chunk, and either is handed over once it exceeds ``max_body`` (the service refuses it with 413
    without reading on). Anything unusual (no end of the head within :data:`MAX_HEAD`, a Content-Length that is
    not a number) is handed over at once, for gunicorn's parser to refuse.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return len(buf) > MAX_HEAD
    head = bytes(buf[: end + 2])
    body = len(buf) - end - 4
    if body > max_body:
        return True
    if _CHUNKED.search(head):
        return bytes(buf[-5:]) == b"0\r\n\r\n" and body >= 5
    found = _LENGTH.search(head)
    if found is None:
        return True
    try:
        length = int(found.group(1).strip())
    except ValueError:
        return True
    return length < 0 or body >= length


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, giving a connection a thread only once its request has arrived (see the module
    docstring). Over TLS it is gunicorn's worker unchanged: the bytes read here would be encrypted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffering: dict[TConn, float] = {}  # connection -> deadline

    def _buffers(self) -> bool:
        return not self.cfg.is_ssl

    def accept(self, listener: Any) -> None:
        if not self._buffers():
            super().accept(listener)
            return
        try:
            sock, addr = listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        self._buffer(TConn(self.cfg, sock, addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        if not self._buffers():
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._buffer(conn)

    def _buffer(self, conn: Any) -> None:
        conn.sock.setblocking(False)
        conn.pre_read = bytearray()
        self._buffering[conn] = time.monotonic() + READ_TIMEOUT
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        self._on_readable(conn, conn.sock)  # what a kept-alive connection sent may be there already

    def _on_readable(self, conn: Any, sock: Any) -> None:
        if conn not in self._buffering:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._drop(conn)
            return
        if not data and not conn.pre_read:
            self._drop(conn)  # closed before sending anything
            return
        conn.pre_read += data
        # At the end of what the client sends (it closed its side), what came is answered: a cut-off body is a 400.
        if not data or request_complete(conn.pre_read):
            del self._buffering[conn]
            self.poller.unregister(sock)
            conn.data_ready = True
            self.enqueue_req(conn)

    def _drop(self, conn: Any, answer: bool = False) -> None:
        self._buffering.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        if answer:
            with contextlib.suppress(OSError):
                write_problem(conn.sock, 408, "Request Timeout", f"send the whole request within {READ_TIMEOUT:g}s")
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self._buffering.items()):
            if not self.alive:
                self._drop(conn)  # stopping: a request not yet sent is not waited for
            elif now > deadline:
                self._drop(conn, answer=True)

    def handle(self, conn: Any) -> Any:
        pre = getattr(conn, "pre_read", None)
        if pre:
            conn.pre_read = bytearray()
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(pre))
        return super().handle(conn)
