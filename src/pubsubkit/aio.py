"""asyncio faces of pubsubkit: an emitter that never blocks the event loop.

The transports are thread-based (their drivers are), so :class:`AsyncEmitter` hands each batch to a thread of
its own that publishes it through a sync :class:`~pubsubkit.emitter.Emitter` and resolves the caller's future
once the broker confirmed. Batches that callers submit while one is being published are sent together, so
many concurrent ``await emitter.emit(...)`` calls cost about one confirmed round trip each time, not one per
call. Envelopes are built on the loop, so a bad event or header raises at the call, before anything is sent.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from pubsubkit.coroutines import in_own_thread
from pubsubkit.emitter import Emitter
from pubsubkit.envelope import Envelope
from pubsubkit.errors import Closed

__all__ = ["AsyncEmitter"]


@attrs.define
class _Batch:
    envelopes: Sequence[Envelope]
    future: asyncio.Future[list[Envelope]]
    loop: asyncio.AbstractEventLoop


def _resolve(future: asyncio.Future[list[Envelope]], result: list[Envelope] | BaseException) -> None:
    if future.done():  # the caller was cancelled: the events may still have been published
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class AsyncEmitter:
    """``await emitter.emit(event)`` returns the envelope once the broker confirmed it, without blocking the
    event loop. Made by :meth:`pubsubkit.Broker.async_emitter`; safe to share between tasks and loops.

    :param max_batch: envelopes published together at most, of the batches waiting when the thread is free.
    """

    def __init__(self, emitter: Emitter, *, max_batch: int = 1000) -> None:
        self.emitter = emitter
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def emit(self, event: Any, *, key: str | None = None, headers: Mapping[str, str] | None = None) -> Envelope:
        """Publish one event; returns its envelope, as sent, once the broker confirmed it."""
        [sent] = await self.publish([self.emitter.envelope(event, key, headers)])
        return sent

    async def emit_many(self, events: Iterable[Any | tuple[Any, str | None]]) -> list[Envelope]:
        """Publish many events (each an event or ``(event, key)``), confirmed together; their envelopes are made
        together, as :meth:`Emitter.emit_many <pubsubkit.emitter.Emitter.emit_many>` makes them."""
        return await self.publish(self.emitter.envelopes(events))

    async def publish(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Publish ready-made envelopes; returns them as sent (publish middleware may have added headers)."""
        if not envelopes:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Envelope]] = loop.create_future()
        self._put(_Batch(list(envelopes), future, loop))
        return await future

    def _put(self, batch: _Batch) -> None:
        with self._lock:
            if self._closed:
                raise Closed("async emitter is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pubsubkit-async-emitter", daemon=True)
                self._thread.start()
            self._queue.put(batch)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batches, size, stop = [first], len(first.envelopes), False
            while size < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batches.append(more)
                size += len(more.envelopes)
            self._send(batches)
            if stop:
                return

    def _send(self, batches: list[_Batch]) -> None:
        envelopes = [e for b in batches for e in b.envelopes]
        try:
            sent = self.emitter.publish(envelopes)
        except BaseException as exc:  # every caller of the batch gets the error (nothing is half-confirmed)
            for b in batches:
                b.loop.call_soon_threadsafe(_resolve, b.future, exc)
            return
        at = 0
        for b in batches:
            n = len(b.envelopes)
            b.loop.call_soon_threadsafe(_resolve, b.future, sent[at : at + n])
            at += n

    async def aclose(self) -> None:
        """Publish what was submitted, then stop; later emits raise Closed."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            await in_own_thread(thread.join, "pubsubkit-async-emitter-join")  # not the default executor's

    async def __aenter__(self) -> AsyncEmitter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
