"""The worker lanes of a listener: threads, each running the pipeline for the messages given to it, in order.

The listener's loop gives each lane its share of a receive (messages of one key always go to the same lane),
and each settlement goes to the listener's results queue. A lane holds the messages of a batch handler until
the batch is due (:class:`~pubsubkit.batching.Held`); a message of another handler runs what is held first,
so that messages of one key stay in order. Listeners with ``async def`` handlers use
:mod:`pubsubkit.async_lanes` instead.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Protocol

from pubsubkit.batching import BatchRunner, Held
from pubsubkit.handlers import HandlerTable
from pubsubkit.pipeline import RELEASE, Pipeline, Settlement

__all__ = ["Lanes", "ThreadLanes"]

log = logging.getLogger("pubsubkit.listener")


class Lanes(Protocol):
    def put(self, lane: int, works: list[Any]) -> None: ...
    def flush(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float) -> None: ...


class ThreadLanes:
    """``count`` lane threads; each settlement is put on ``results`` as ``(delivery, settlement)``, a batch's as
    a list of them (acknowledged together).

    :param abandon: set at the end of a drain: the lanes skip the work still queued (it is released).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        batches: BatchRunner,
        table: HandlerTable,
        count: int,
        results: queue.SimpleQueue[Any],
        abandon: threading.Event,
    ) -> None:
        self._pipeline = pipeline
        self._batches = batches
        self._table = table
        self._results = results
        self._abandon = abandon
        self._queues: list[queue.SimpleQueue[list[Any] | None]] = [queue.SimpleQueue() for _ in range(count)]
        self._threads = [
            threading.Thread(target=self._lane, args=(q,), name=f"pubsubkit-{pipeline.group}-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        for t in self._threads:
            t.start()

    def put(self, lane: int, works: list[Any]) -> None:
        """Give ``works`` (in order) to lane number ``lane``."""
        self._queues[lane].put(works)

    def flush(self) -> None:
        """Let each lane run the batch it holds now, full or not (the listener can receive no more)."""
        for q in self._queues:
            q.put([])

    def stop(self) -> None:
        """Let each lane end once it has done what it was given (and run what it holds)."""
        for q in self._queues:
            q.put(None)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (in all) for the lanes to end."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _lane(self, q: queue.SimpleQueue[list[Any] | None]) -> None:
        held = Held(self._table.batch_of) if self._table.has_batches else None
        while True:
            try:
                works = q.get(timeout=None if held is None else held.timeout())
            except queue.Empty:  # the held batch waited its max_wait
                self._run_held(held)
                continue
            if works is None or not works:  # the end, or flush()
                self._run_held(held)
                if works is None:
                    return
                continue
            for work in works:  # in order: messages of one key are in one lane's batches
                if self._abandon.is_set():
                    break
                spec = None if held is None else held.spec_of(work)
                if spec is None or held is None:
                    self._run_held(held)  # what was held came first
                    self._process(work)
                    continue
                if held.spec is not spec:
                    self._run_held(held)
                if held.add(work, spec):
                    self._run_held(held)
            if held is not None and held.due:
                self._run_held(held)

    def _process(self, work: Any) -> None:
        try:
            settlement = self._pipeline.process(work)
        except BaseException as exc:  # a bug here must not lose the message: give it back
            log.exception("listener %s: internal error", self._pipeline.group)
            self._results.put((work, RELEASE))
            if not isinstance(exc, Exception):
                raise
            return
        self._results.put((work, settlement))

    def _run_held(self, held: Held | None) -> None:
        """Run the batch ``held`` holds, if any."""
        if held is None or not held.works:
            return
        spec, works = held.take()
        if self._abandon.is_set() or spec is None:
            return  # released by the drain
        settlements: list[Settlement] = [RELEASE] * len(works)
        try:
            settlements = self._batches.process(spec, works)
        except Exception:  # a bug here must not lose the messages: give them back
            log.exception("listener %s: internal error", self._pipeline.group)
        finally:
            self._results.put(list(zip(works, settlements, strict=True)))
