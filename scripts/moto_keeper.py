"""A moto server whose state outlives a restart, for the restart cases of the test suite.

    python moto_keeper.py --host H --port P --state FILE [--single-threaded]

On start the services' state is loaded from FILE when it exists; on SIGTERM or SIGINT the HTTP server stops
taking requests and the state is written to FILE (atomically) before the process exits. A request that is
still running when the server begins to stop gets 503 (which clients retry) instead of its answer: so every
change a client saw succeed is in the state written, and a change the client saw fail may be there too (the
retry then repeats it, the at-least-once a real outage gives), but nothing acknowledged is ever lost. So a
restart through ``scripts/servers restart`` brings back the queues, their messages (with receipt handles and
visibility),
topics and tables as they were, the way a real service keeps them. ``scripts/servers`` removes FILE
when a server is stopped with ``down``, so ``up`` starts empty.

``--single-threaded`` serves one request at a time, on one thread, one connection per request (HTTP/1.0):
moto takes no lock around a DynamoDB transaction, and a transaction that fails puts back whole tables as they
were when it began, undoing what other requests wrote meanwhile; served one by one, every request sees and
leaves a consistent state, as DynamoDB's own serializable transactions do. It queues every request, long
polls included, so the DynamoDB server is this one, apart from the threaded one of SQS and SNS.

Runs in the test servers' virtualenv (it imports moto); not part of any package.
"""

from __future__ import annotations

import argparse
import io
import logging
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from moto.backends import get_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

#: The services whose state is kept (what the project's tests use).
SERVICES = ("sqs", "sns", "dynamodb")
_LOCKS = (type(threading.Lock()), type(threading.RLock()))


class _Pickler(pickle.Pickler):
    """Pickles moto's backends; their locks come back as new, unheld locks."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCKS):
            return (threading.RLock if isinstance(obj, _LOCKS[1]) else threading.Lock, ())
        if isinstance(obj, threading.Condition):
            return (threading.Condition, ())
        return NotImplemented


class OneAtATime(MotoRequestHandler):
    """HTTP/1.0, so the connection closes after each answer: a single-threaded server would serve no one else
    while a client held an idle keep-alive connection (werkzeug keeps them only when threaded; this says so).
    A connection that sends nothing for ``timeout`` seconds is dropped, for the same reason."""

    protocol_version = "HTTP/1.0"
    timeout = 5


class Guard:
    """WSGI middleware: once ``stopping`` is set, answer 503 instead of what the services answer."""

    JSON = b'{"__type": "ServiceUnavailable", "message": "the server is stopping"}'
    XML = (
        b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
        b"<Message>the server is stopping</Message></Error><RequestId>stopping</RequestId></ErrorResponse>"
    )

    def __init__(self, app: Any, stopping: threading.Event) -> None:
        self.app, self.stopping = app, stopping

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        answer: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return lambda data: None

        if not self.stopping.is_set():
            body = b"".join(self.app(environ, keep))
            if not self.stopping.is_set():  # the change (if any) was made before the state is written
                start_response(*answer)
                return [body]
        if "amz-json" in environ.get("CONTENT_TYPE", ""):  # the JSON protocols (DynamoDB, SQS); else XML (SNS, S3)
            kind, body = "application/x-amz-json-1.0", self.JSON
        else:
            kind, body = "text/xml", self.XML
        start_response("503 Service Unavailable", [("Content-Type", kind), ("Connection", "close")])
        return [body]


def load(path: Path) -> None:
    if not path.is_file():
        return
    t0 = time.monotonic()
    state: dict[str, Any] = pickle.loads(path.read_bytes())
    for name, saved in state.items():
        live = get_backend(name)
        for account, regions in saved.items():
            dict.__setitem__(live, account, regions)
    print(f"moto_keeper: state loaded from {path} in {time.monotonic() - t0:.2f}s", flush=True)


def save(path: Path) -> None:
    t0 = time.monotonic()
    for attempt in range(50):  # a request thread still running may change a dict while it is pickled
        buf = io.BytesIO()
        try:
            _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump({n: dict(get_backend(n)) for n in SERVICES})
            break
        except RuntimeError:
            if attempt == 49:
                raise
            time.sleep(0.05)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    print(
        f"moto_keeper: state saved to {path} ({len(buf.getvalue())} bytes) in {time.monotonic() - t0:.2f}s", flush=True
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--single-threaded", action="store_true", help="serve one request at a time")
    args = parser.parse_args(argv)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request: they cost the server time
    load(args.state)
    closing = threading.Event()  # set once stopping: requests still running answer 503 from then on
    app = Guard(DomainDispatcherApplication(create_backend_app), closing)
    threaded = not args.single_threaded
    handler = MotoRequestHandler if threaded else OneAtATime
    server = make_server(args.host, args.port, app, threaded=threaded, request_handler=handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    while not stopping.wait(0.2):  # with a timeout: a wait without one would never run the signal handler
        pass
    closing.set()
    server.shutdown()  # no new connection; the requests still running answer 503 (Guard)
    serving.join()
    save(args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
