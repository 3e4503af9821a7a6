"""Helpers of the conformance suite: unique names, per-test event types, waiting, recording handlers and hooks.

They are public so that a backend's own tests can use them beside the suite.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import attrs
import pytest

from pubsubkit.codec import Codec
from pubsubkit.envelope import Envelope
from pubsubkit.events import EventRegistry
from pubsubkit.listener import Message
from pubsubkit.plugin import hookimpl
from pubsubkit.store import Store
from pubsubkit.transport import DeadLetter

__all__ = [
    "DEFAULT_TIMEOUT",
    "Collector",
    "EventKit",
    "HookRecorder",
    "InboxEffects",
    "Received",
    "ServerControl",
    "Sizes",
    "duplicates",
    "require_server",
    "run_threads",
    "unique_name",
    "wait_until",
]

#: Seconds a case waits for something that should happen; generous, because no case measures speed.
DEFAULT_TIMEOUT = 60.0


def unique_name(prefix: str = "ck") -> str:
    """A name no other test uses: letters, digits and ``_`` only, starting with a letter, short.

    Valid as a topic, queue, consumer group, event name and collection name on every backend.
    """
    return f"{prefix}_{secrets.token_hex(5)}"


def wait_until(
    predicate: Callable[[], object],
    timeout: float = DEFAULT_TIMEOUT,
    what: str | Callable[[], str] = "the condition",
    interval: float = 0.01,
) -> None:
    """Return as soon as ``predicate()`` is true; fail the test after ``timeout`` seconds.

    ``what`` (or what it returns) says in the failure what was awaited and what was seen instead.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {described}")
        time.sleep(interval)


#: Set to ``1`` to make a test whose server does not answer fail instead of skip (CI never counts a skip as a pass).
REQUIRE_SERVERS_ENV = "PUBSUBKIT_REQUIRE_SERVERS"


def require_server(name: str, url: str, default_port: int) -> str:
    """Return ``url`` when its server accepts connections; otherwise skip the test with the command that starts
    it, or fail it under ``PUBSUBKIT_REQUIRE_SERVERS=1``.

    ``url`` is a URL or ``host:port``; ``default_port`` is used when it names none.
    """
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        message = f"the {name} test server does not answer on {host}:{port}: run 'scripts/servers up {name}'"
        if os.environ.get(REQUIRE_SERVERS_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


class ServerControl(Protocol):
    """Stops and starts the server behind a backend, for the reconnect cases (capability ``restartable``)."""

    def stop(self) -> None:
        """Stop the server; return once it no longer accepts connections."""

    def start(self) -> None:
        """Start the server again; return once it accepts connections."""


@attrs.frozen
class Sizes:
    """How many messages, names, threads... each case uses. :data:`FULL` are the full sizes of docs/conformance.md."""

    publish_subscribe: int
    concurrent_publish: int
    concurrent_publishers: int
    many_names: int
    per_name: int
    redelivery: int
    continue_after_close: int
    concurrent_close: int
    continue_after_errors: int
    ordering: int
    ordering_keys: int
    emitter_close: int
    emitter_close_threads: int
    reconnect: int
    consumer_groups: int
    shutdown: int
    bulk: int
    documents: int
    writers: int
    seam_history: int
    seam_meanwhile: int

    @classmethod
    def for_name(cls, name: str) -> Sizes:
        return FULL if name == "full" else QUICK


FULL = Sizes(
    publish_subscribe=100,
    concurrent_publish=5000,
    concurrent_publishers=50,
    many_names=20,
    per_name=100,
    redelivery=100,
    continue_after_close=5000,
    concurrent_close=10,
    continue_after_errors=50,
    ordering=1000,
    ordering_keys=16,
    emitter_close=10_000,
    emitter_close_threads=20,
    reconnect=10_000,
    consumer_groups=50,
    shutdown=200,
    bulk=1000,
    documents=2000,
    writers=50,
    seam_history=5000,
    seam_meanwhile=5000,
)

QUICK = Sizes(
    publish_subscribe=100,
    concurrent_publish=500,
    concurrent_publishers=10,
    many_names=8,
    per_name=20,
    redelivery=30,
    continue_after_close=400,
    concurrent_close=10,
    continue_after_errors=50,
    ordering=300,
    ordering_keys=16,
    emitter_close=1000,
    emitter_close_threads=10,
    reconnect=1000,
    consumer_groups=50,
    shutdown=60,
    bulk=200,
    documents=400,
    writers=50,
    seam_history=2000,
    seam_meanwhile=5000,
)


class EventKit:
    """Event types registered under names unique to one test, in a registry of their own.

    Every type has the fields ``n`` (a number), ``key``, ``note`` and ``tags``; :meth:`event_type` makes a new
    one per label so that a case can use several names without clashing with any other test on a shared server.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or unique_name("ck")
        self.registry = EventRegistry()
        self.codec = Codec(self.registry)
        self._types: dict[str, type[Any]] = {}

    def name(self, label: str) -> str:
        """The event name (or group, queue, collection name) of ``label`` in this test."""
        return f"{self.prefix}_{label}"

    def event_type(self, label: str = "ping") -> type[Any]:
        """The attrs event class registered as ``name(label)``, made on first use."""
        cls = self._types.get(label)
        if cls is None:
            cls = attrs.make_class(
                f"Ping_{label}",
                {
                    "n": attrs.field(type=int),
                    "key": attrs.field(type=cast(Any, str | None), default=None),
                    "note": attrs.field(type=str, default=""),
                    "tags": attrs.field(type=list[str], factory=list),
                },
                frozen=True,
            )
            self.registry.register(cls, self.name(label))
            self._types[label] = cls
        return cls


@attrs.frozen
class Received:
    """One handler call as a :class:`Collector` saw it."""

    event: Any
    envelope: Envelope
    attempt: int
    group: str
    at: float

    @property
    def id(self) -> str:
        return self.envelope.id


@attrs.define
class _Tally:
    id: str
    n: int = 0


class InboxEffects:
    """A handler with one effect per message, written through the group's inbox (``msg.unit_of_work()``).

    Each message it handles adds one to a counter in ``store`` in the same commit as its inbox record, so a
    message the inbox has seen adds nothing: :attr:`count` is the number of effects, duplicates dropped.
    """

    def __init__(self, store: Store, name: str = "effects") -> None:
        self.tallies = store.collection(name, _Tally)
        self.tallies.insert(_Tally("all"))

    def __call__(self, event: Any, msg: Message) -> None:
        with msg.unit_of_work() as uow:
            uow.update(self.tallies, "all", inc={"n": 1})

    @property
    def count(self) -> int:
        return self.tallies.get("all").n


class Collector:
    """A handler that records every call; thread-safe. Optionally fails or blocks on chosen calls.

    :param fail: called with each event and message before recording; an exception it raises is the handler's.
    :param effect: called after a successful record, for side effects such as a unit of work.
    """

    def __init__(
        self,
        fail: Callable[[Any, Message], None] | None = None,
        effect: Callable[[Any, Message], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.calls: list[Received] = []
        self.failures: list[Received] = []
        self._fail = fail
        self._effect = effect

    def __call__(self, event: Any, msg: Message) -> None:
        rec = Received(event, msg.envelope, msg.attempt, msg.group, time.monotonic())
        if self._fail is not None:
            try:
                self._fail(event, msg)
            except BaseException:
                with self._lock:
                    self.failures.append(rec)
                raise
        if self._effect is not None:
            self._effect(event, msg)
        with self._lock:
            self.calls.append(rec)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.calls)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.calls)

    def ids(self) -> list[str]:
        return [r.id for r in self.snapshot()]

    def distinct(self) -> set[str]:
        return set(self.ids())

    def wait_for(self, ids: Iterable[str], timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until every id in ``ids`` was handled at least once."""
        wanted = set(ids)
        wait_until(
            lambda: wanted <= self.distinct(),
            timeout,
            lambda: f"{len(wanted)} messages; {len(wanted - self.distinct())} never arrived",
        )

    def wait_count(self, n: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        wait_until(lambda: self.count >= n, timeout, lambda: f"{n} handler calls; saw {self.count}")


def duplicates(ids: Sequence[str]) -> dict[str, int]:
    """The ids that occur more than once, with how often."""
    return {i: c for i, c in Counter(ids).items() if c > 1}


class HookRecorder:
    """A pluggy plugin recording the observation hooks: dead letters and handler outcomes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.letters: list[DeadLetter] = []
        self.outcomes: list[tuple[str, str, str, int]] = []  # (group, message id, outcome, attempt)

    @hookimpl
    def pubsubkit_dead_lettered(self, letter: DeadLetter) -> None:
        with self._lock:
            self.letters.append(letter)

    @hookimpl
    def pubsubkit_handled(self, envelope: Envelope, group: str, outcome: str, seconds: float, attempt: int) -> None:
        with self._lock:
            self.outcomes.append((group, envelope.id, outcome, attempt))

    def letters_of(self, group: str) -> list[DeadLetter]:
        with self._lock:
            return [x for x in self.letters if x.group == group]

    def outcomes_of(self, group: str, message_id: str | None = None) -> list[str]:
        with self._lock:
            return [o for g, i, o, _ in self.outcomes if g == group and (message_id is None or i == message_id)]


def run_threads(count: int, target: Callable[[int], None], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Run ``target(i)`` for ``i`` in ``range(count)`` in as many threads at once; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def body(i: int) -> None:
        try:
            start.wait(timeout)
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        pytest.fail(f"{sum(t.is_alive() for t in threads)} of {count} threads still running after {timeout:.0f}s")
    if errors:
        raise errors[0]
