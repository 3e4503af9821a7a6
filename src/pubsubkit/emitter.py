"""The emitter: encode events, publish them, and report success only when the broker confirmed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pluggy

from pubsubkit.codec import Codec
from pubsubkit.envelope import Envelope, Header, new_id
from pubsubkit.errors import Closed, ConnectionLost, PublishError
from pubsubkit.registry import redact
from pubsubkit.transport import Transport

__all__ = ["Emitter"]


class Emitter:
    """Publishes events through a transport. Thread-safe.

    :param retry_for: seconds during which a publish that failed with a connection error is tried again
        (same message ids, so consumers with an inbox see no duplicate effect). 0 disables retrying.
    """

    def __init__(
        self,
        transport: Transport,
        codec: Codec,
        pm: pluggy.PluginManager | None = None,
        *,
        retry_for: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.retry_for = retry_for
        self.headers = dict(headers or {})
        self._url = redact(transport.url)
        hook = pm.hook.pubsubkit_emitted if pm is not None else None
        self._hook = hook if hook is not None and hook.get_hookimpls() else None
        self._closed = False
        self._lock = threading.Lock()

    def envelope(self, event: Any, key: str | None = None, headers: Mapping[str, str] | None = None) -> Envelope:
        hdrs = {**self.headers, **headers} if headers else self.headers
        if Header.CORRELATION_ID in hdrs:
            return self.codec.envelope(event, key=key, headers=hdrs)
        # A new conversation: the event is its own correlation id (set here rather than copying the envelope).
        message_id = new_id()
        return self.codec.envelope(event, key=key, headers={**hdrs, Header.CORRELATION_ID: message_id}, id=message_id)

    def emit(self, event: Any, *, key: str | None = None, headers: Mapping[str, str] | None = None) -> Envelope:
        """Publish one event; returns its envelope once the broker confirmed it."""
        env = self.envelope(event, key, headers)
        self.publish([env])
        return env

    def emit_many(self, events: Iterable[Any | tuple[Any, str | None]]) -> list[Envelope]:
        """Publish many events (each an event or ``(event, key)``) as one pipelined, confirmed batch."""
        envs = []
        for item in events:
            if isinstance(item, tuple):
                envs.append(self.envelope(item[0], item[1]))
            else:
                envs.append(self.envelope(item))
        self.publish(envs)
        return envs

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish ready-made envelopes (the outbox relay uses this), retrying within ``retry_for``."""
        if self._closed:
            raise Closed("emitter is closed")
        if not envelopes:
            return
        start = time.monotonic()
        deadline = start + self.retry_for
        delay = 0.05
        while True:
            try:
                self.transport.publish(envelopes)
                break
            except (ConnectionLost, PublishError) as exc:
                if time.monotonic() + delay > deadline or not getattr(exc, "retryable", True):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        if self._hook is not None:
            self._hook(envelopes=envelopes, url=self._url, seconds=time.monotonic() - start)

    def flush(self) -> None:
        """Every emit returns confirmed, so there is nothing buffered; kept for API symmetry."""

    def close(self) -> None:
        """Stop accepting events. Idempotent; the transport is closed by its owner."""
        self._closed = True
