"""The worker lanes of a listener with ``async def`` handlers: tasks on an event loop instead of threads.

A listener whose handlers include a coroutine runs each lane as a task on the loop of its
:class:`~pubsubkit.coroutines.CoroutineRunner` (the application's when served from it). The loop thread of
the listener hands each lane its share of a receive in one call (``call_soon_threadsafe``), and the lane
awaits the pipeline's steps for one message after another, in order, so messages of one key stay in order
and the message is settled only after its handlers finished, exactly as with thread lanes. What would block
the loop runs in a worker thread of the lanes' own (:class:`~pubsubkit.coroutines.Offload`, one per lane, not the
loop's default executor): the inbox's reads and writes, sync handlers next to async ones, batch handlers, and
the handler middleware of plugins that has no ``awaiting`` form (the coroutine it wraps comes back to the loop);
middleware with one (pubsubkit-otel's) runs around the coroutine on the loop. A retry's
backoff is an ``asyncio.sleep`` that ends early when the listener stops or the delivery is revoked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from pubsubkit.batching import BatchRunner, Held
from pubsubkit.coroutines import Offload, not_awaited
from pubsubkit.envelope import Envelope
from pubsubkit.errors import AlreadyProcessed
from pubsubkit.handlers import Handler, HandlerTable
from pubsubkit.message import Message, inbox_id
from pubsubkit.pipeline import RELEASE, Pipeline, Settlement
from pubsubkit.store import MarkProcessed
from pubsubkit.transport import Delivery

__all__ = ["AsyncLanes"]

log = logging.getLogger("pubsubkit.listener")

#: How often a retry's backoff looks whether the listener stopped or the delivery was revoked, in seconds.
_BACKOFF_TICK = 0.05


class AsyncLanes:
    """``count`` lanes as tasks on ``loop``; each settlement goes to ``results`` as ``(delivery, settlement)``, a
    batch's as a list of them.

    :param abandon: set at the end of a drain: the lanes skip the work still queued (it is released).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        loop: asyncio.AbstractEventLoop,
        count: int,
        results: queue.SimpleQueue[Any],
        abandon: threading.Event,
        batches: BatchRunner | None = None,
        table: HandlerTable | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.batches = batches
        self.table = table
        self.loop = loop
        self.results = results
        self.abandon = abandon
        self.offload = Offload(f"pubsubkit-{pipeline.group}", count)
        self._queues: list[asyncio.Queue[list[Any] | None]] = []

        async def start() -> None:
            self._queues = [asyncio.Queue() for _ in range(count)]

        asyncio.run_coroutine_threadsafe(start(), loop).result()
        self._tasks: list[concurrent.futures.Future[None]] = [
            asyncio.run_coroutine_threadsafe(self._lane(q), loop) for q in self._queues
        ]

    def put(self, lane: int, works: list[Any]) -> None:
        """Give ``works`` (in order) to lane number ``lane``."""
        self.loop.call_soon_threadsafe(self._queues[lane].put_nowait, works)

    def flush(self) -> None:
        """Let each lane run the batch it holds now, full or not (the listener can receive no more)."""
        for q in self._queues:
            self.loop.call_soon_threadsafe(q.put_nowait, [])

    def stop(self) -> None:
        """Let each lane end once it has done what it was given."""
        for q in self._queues:
            self.loop.call_soon_threadsafe(q.put_nowait, None)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (in all) for the lanes to end."""
        deadline = time.monotonic() + timeout
        for task in self._tasks:
            try:
                task.result(max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                return
            except Exception:  # logged by the lane; its messages are released by the drain
                continue
        self.offload.close()

    async def _lane(self, q: asyncio.Queue[list[Any] | None]) -> None:
        table = self.table
        held = Held(table.batch_of) if table is not None and table.has_batches else None
        while True:
            try:
                works = await asyncio.wait_for(q.get(), None if held is None else held.timeout())
            except TimeoutError:  # the held batch waited its max_wait
                await self._run_held(held)
                continue
            if works is None or not works:  # the end, or flush()
                await self._run_held(held)
                if works is None:
                    return
                continue
            for work in works:  # in order: messages of one key are in one lane's batches
                if self.abandon.is_set():
                    break
                spec = None if held is None else held.spec_of(work)
                if spec is None or held is None:
                    await self._run_held(held)  # what was held came first
                    await self._process(work)
                    continue
                if held.spec is not spec:
                    await self._run_held(held)
                if held.add(work, spec):
                    await self._run_held(held)
            if held is not None and held.due:
                await self._run_held(held)

    async def _process(self, work: Any) -> None:
        try:
            settlement = await process(self.pipeline, work, self.offload)
        except Exception:  # a bug here must not lose the message: give it back
            log.exception("listener %s: internal error", self.pipeline.group)
            settlement = RELEASE
        self.results.put((work, settlement))

    async def _run_held(self, held: Held | None) -> None:
        """Run the batch ``held`` holds, if any, in a thread (the handler is run to its end by the runner)."""
        if held is None or not held.works or self.batches is None:
            return
        spec, works = held.take()
        if self.abandon.is_set() or spec is None:
            return  # released by the drain
        settlements: list[Settlement] = [RELEASE] * len(works)
        try:
            settlements = await self.offload(self.batches.process, spec, works)
        except Exception:  # a bug here must not lose the messages: give them back
            log.exception("listener %s: internal error", self.pipeline.group)
        finally:
            self.results.put(list(zip(works, settlements, strict=True)))


async def process(p: Pipeline, d: Delivery, offload: Offload) -> Settlement:
    """:meth:`Pipeline.process <pubsubkit.pipeline.Pipeline.process>` on an event loop, awaiting the handlers;
    what blocks runs in ``offload``'s threads."""
    routed = p.route(d)
    if isinstance(routed, Settlement):
        return routed
    env, handlers = routed
    if p.store is not None and await offload(p.store.inbox_contains, p.group, env.id):
        return p.duplicate(d, env)
    event = p.decode(d, env)
    if isinstance(event, Settlement):
        return event
    attempt = d.attempt
    while True:
        start = time.monotonic()
        try:
            duplicate = await _run_handlers(p, handlers, event, env, attempt, offload)
        except Exception as exc:
            verdict = p.failed(d, env, exc, attempt, time.monotonic() - start)
            if verdict is not None:
                return verdict
            if await _backoff(p, d, p.retry.delay(attempt)):
                return RELEASE
            attempt += 1
            continue
        return p.succeeded(env, duplicate, attempt, time.monotonic() - start)


async def _run_handlers(
    p: Pipeline, handlers: Sequence[Handler], event: Any, env: Envelope, attempt: int, offload: Offload
) -> bool:
    """Run each handler not yet recorded in the inbox; ``True`` if another delivery did all the work."""
    store = p.store
    count = len(handlers)
    for i, fn in enumerate(handlers):
        record = inbox_id(env.id, i, count)
        if store is not None and i < count - 1 and await offload(store.inbox_contains, p.group, record):
            continue  # done by an earlier attempt
        msg = Message(env, p.group, attempt, store, record)
        try:
            coroutine_fn = getattr(fn, "__pubsubkit_async__", None)
            if coroutine_fn is not None and p.acall is not None:  # every middleware has its awaiting form
                await p.acall(fn, event, msg)
            elif p.call is not None:  # sync middleware: in a thread, from which the coroutine comes back here
                await offload(p.call, fn, event, msg)
            elif coroutine_fn is not None:
                await coroutine_fn(event, msg)
            else:
                await offload(_call_sync, fn, event, msg)
            if store is not None and not msg.recorded:
                await offload(store.commit, [MarkProcessed(p.group, record)])
        except AlreadyProcessed:
            if i == count - 1:
                return True
            # another delivery of this message finished this handler first: go on with the next one
    return False


def _call_sync(fn: Handler, event: Any, msg: Message) -> None:
    result = fn(event, msg)
    if result is not None and hasattr(result, "__await__"):
        raise not_awaited(fn, result)


async def _backoff(p: Pipeline, d: Delivery, delay: float) -> bool:
    """Wait ``delay`` seconds before a retry; ``True`` when the listener stops or the delivery is revoked."""
    deadline = time.monotonic() + delay
    while not p.stop.is_set() and (d.revoked is None or not d.revoked.is_set()):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, _BACKOFF_TICK))
    return True
