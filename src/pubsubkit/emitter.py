"""The emitter: encode events, publish them, and report success only when the broker confirmed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pubsubkit.checks import seconds
from pubsubkit.codec import Codec, check_headers
from pubsubkit.envelope import Envelope
from pubsubkit.errors import Closed, ConnectionLost, PublishError
from pubsubkit.plugin.observers import NO_OBSERVERS, Observers
from pubsubkit.retry import Backoff, retry_call
from pubsubkit.transport import Transport
from pubsubkit.urls import redact

__all__ = ["Emitter"]


class Emitter:
    """Publishes events through a transport. Thread-safe.

    :param observers: the plugins' observers and publish middleware (:class:`~pubsubkit.plugin.Observers`).
    :param retry_for: seconds during which a publish that failed with a connection error is tried again
        (same message ids, so consumers with an inbox see no duplicate effect). 0 disables retrying.
    """

    #: Waits between tries of a publish that failed with a connection error.
    BACKOFF = Backoff(initial=0.05, multiplier=2.0, max_delay=1.0)

    def __init__(
        self,
        transport: Transport,
        codec: Codec,
        observers: Observers = NO_OBSERVERS,
        *,
        retry_for: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        check_headers(headers)
        self.transport = transport
        self.codec = codec
        self.retry_for = seconds("emitter", "retry_for", retry_for)
        self.headers = dict(headers or {})
        self._url = redact(transport.url)
        self._observers = observers
        self._publish = observers.publish_chain(self._send, self._url)
        self._closed = threading.Event()

    def envelope(self, event: Any, key: str | None = None, headers: Mapping[str, str] | None = None) -> Envelope:
        """A new envelope of ``event`` with the emitter's headers and ``headers`` (see :meth:`Codec.envelope`)."""
        hdrs = {**self.headers, **headers} if headers else self.headers
        return self.codec.envelope(event, key=key, headers=hdrs)

    def emit(self, event: Any, *, key: str | None = None, headers: Mapping[str, str] | None = None) -> Envelope:
        """Publish one event; returns its envelope, as sent, once the broker confirmed it."""
        return self.publish([self.envelope(event, key, headers)])[0]

    def emit_many(self, events: Iterable[Any | tuple[Any, str | None]]) -> list[Envelope]:
        """Publish many events (each an event or ``(event, key)``) as one pipelined, confirmed batch.

        Their envelopes are made together (:meth:`envelopes`): one time, ids drawn in order."""
        return self.publish(self.envelopes(events))

    def envelopes(self, events: Iterable[Any | tuple[Any, str | None]]) -> list[Envelope]:
        """New envelopes of ``events`` (each an event or ``(event, key)``) with the emitter's headers, made together
        (:meth:`Codec.envelopes`): the clock is read once and the ids are drawn in order."""
        pairs = [(item[0], item[1]) if isinstance(item, tuple) else (item, None) for item in events]
        return self.codec.envelopes(pairs, self.headers)

    def publish(self, envelopes: Sequence[Envelope], *, retry_for: float | None = None) -> list[Envelope]:
        """Publish ready-made envelopes, retrying within ``retry_for`` seconds (default: the emitter's; 0: try
        once, the caller retries). Returns them as sent: publish middleware may have added headers.

        A retry waits on the emitter's close: :meth:`close` ends it, raising the last error.
        """
        if self._closed.is_set():
            raise Closed("emitter is closed")
        if not envelopes:
            return []
        start = time.monotonic()
        window = self.retry_for if retry_for is None else retry_for
        sent = retry_call(
            lambda: self._publish(envelopes),
            retry_on=(ConnectionLost, PublishError),
            retryable=lambda exc: getattr(exc, "retryable", True),
            stop=self._closed,
            backoff=self.BACKOFF,
            deadline=start + window,
        )
        self._observers.emitted(sent, self._url, time.monotonic() - start)
        return list(sent)

    def _send(self, envelopes: Sequence[Envelope]) -> Sequence[Envelope]:
        """The innermost publish of the middleware chain."""
        self.transport.publish(envelopes)
        return envelopes

    def flush(self) -> None:
        """Every emit returns confirmed, so there is nothing buffered; kept for API symmetry."""

    def close(self) -> None:
        """Stop accepting events. Idempotent; the transport is closed by its owner."""
        self._closed.set()
