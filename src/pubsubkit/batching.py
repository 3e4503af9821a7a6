"""Batch handlers: a handler called with a list of events, its messages acknowledged together after it returned.

A listener lane (see :mod:`pubsubkit.listener`) holds the messages of a batch handler's events until it has
``max_size`` of them or the first has waited ``max_wait`` seconds, or until a message of another handler comes
next in the lane (messages of one key stay in order). :class:`BatchRunner` then runs the batch:

1. Each message goes through the per-message steps of :class:`~pubsubkit.pipeline.Pipeline` first: a revoked
   delivery is released, an undecodable one is dead-lettered on its own as poison, one the group's inbox has
   already acknowledged is acknowledged as a duplicate. The handler gets the rest, in order.
2. The handler is retried as a whole, with the listener's retry policy and backoff, while it raises.
3. **The rule for a poison message inside a batch**: when the batch fails its last attempt (or fails
   fatally), each of its messages is handled once more alone, as a batch of one. Those that pass are
   acknowledged; one that fails again is dead-lettered with its own error (reason ``failed`` or ``fatal``).
   So one bad message costs its batch the retries, never the other messages.
4. Every message of the batch is then acknowledged together. With a store, the batch's messages are recorded
   in the group's inbox: atomically with the handler's writes when it used :meth:`Batch.unit_of_work`, else
   right after it returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from pubsubkit.batch import Batch, BatchSpec
from pubsubkit.envelope import Envelope
from pubsubkit.errors import AlreadyProcessed
from pubsubkit.message import Message
from pubsubkit.pipeline import ACK, RELEASE, Pipeline, Settle, Settlement
from pubsubkit.plugin.observers import Outcome
from pubsubkit.store import MarkProcessed
from pubsubkit.transport import Delivery

__all__ = ["BatchRunner"]


@attrs.define
class _Item:
    index: int
    delivery: Delivery
    envelope: Envelope
    event: Any


class BatchRunner:
    """Runs batches through a listener's :class:`~pubsubkit.pipeline.Pipeline` (see the module docstring)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline

    def process(self, spec: BatchSpec, deliveries: Sequence[Delivery]) -> list[Settlement]:
        """The settlement of each of ``deliveries`` (same order), after running ``spec``'s handler."""
        out: list[Settlement | None] = [None] * len(deliveries)
        copies: dict[int, int] = {}
        items = self._admit(deliveries, out, copies)
        if items:
            self._attempts(spec, items, out, max(i.delivery.attempt for i in items))
        for index, first in copies.items():  # a copy settles as its first delivery did (one dead letter is enough)
            settled = out[first]
            out[index] = settled if settled is not None and settled.action is not Settle.DEAD else ACK
            env = deliveries[index].envelope
            if env is not None and out[index] is ACK:
                self.p.observers.handled(env, self.p.group, Outcome.DUPLICATE, 0.0, deliveries[index].attempt)
        return [RELEASE if s is None else s for s in out]

    def _admit(
        self, deliveries: Sequence[Delivery], out: list[Settlement | None], copies: dict[int, int]
    ) -> list[_Item]:
        """The deliveries the handler gets; the settlement of the others (released, poison, duplicate) in
        ``out``; a second delivery of a message in the batch goes to ``copies`` (its index: the first's)."""
        p, items = self.p, []
        first: dict[str, int] = {}
        for index, d in enumerate(deliveries):
            if d.revoked is not None and d.revoked.is_set():
                out[index] = RELEASE
                continue
            env = d.envelope
            if env is None:
                out[index] = p._dead(d, "poison", d.error or "undecodable message", d.attempt)
                continue
            if env.id in first:
                copies[index] = first[env.id]
                continue
            first[env.id] = index
            if p.store is not None and p.store.inbox_contains(p.group, env.id):
                out[index] = p.duplicate(d, env)
                continue
            event = p.decode(d, env)
            if isinstance(event, Settlement):
                out[index] = event
                continue
            items.append(_Item(index, d, env, event))
        return items

    def _attempts(self, spec: BatchSpec, items: list[_Item], out: list[Settlement | None], attempt: int) -> None:
        """Run the batch until it succeeds, then acknowledge it; after its last failure, each message alone."""
        p = self.p
        while items:
            start = time.monotonic()
            try:
                done = self._run(spec, items, attempt)
            except Exception as exc:
                took = (time.monotonic() - start) / len(items)
                if p.retry.is_fatal(exc) or attempt >= p.retry.attempts:
                    self._alone(spec, items, out, attempt + 1)
                    return
                for item in items:
                    p.observers.handled(item.envelope, p.group, Outcome.RETRY, took, attempt)
                items = self._wait(items, out, p.retry.delay(attempt))
                attempt += 1
                continue
            if not done:  # another delivery recorded some of them meanwhile: run the rest again
                left = self._fresh(items, out)
                if len(left) < len(items):
                    items = left
                    continue
            took = (time.monotonic() - start) / len(items)
            for item in items:  # (not done here: the handler itself said AlreadyProcessed, a success)
                out[item.index] = p.succeeded(item.envelope, not done, attempt, took)
            return

    def _alone(self, spec: BatchSpec, items: list[_Item], out: list[Settlement | None], attempt: int) -> None:
        """Each message once more as a batch of one: acknowledged if it passes, else dead-lettered."""
        p = self.p
        for item in items:
            if p.stop.is_set() or (item.delivery.revoked is not None and item.delivery.revoked.is_set()):
                out[item.index] = RELEASE
                continue
            start = time.monotonic()
            try:
                done = self._run(spec, [item], attempt)
            except Exception as exc:
                out[item.index] = p.gave_up(item.delivery, item.envelope, exc, attempt, time.monotonic() - start)
                continue
            out[item.index] = p.succeeded(item.envelope, not done, attempt, time.monotonic() - start)

    def _run(self, spec: BatchSpec, items: list[_Item], attempt: int) -> bool:
        """Call the handler once; ``False`` if the inbox refused the batch's records (someone was first)."""
        store, group = self.p.store, self.p.group
        messages = [Message(i.envelope, group, attempt, store) for i in items]
        batch = Batch(messages, group, attempt, store)
        try:
            spec.call([i.event for i in items], batch)
            if store is not None and not batch.recorded:
                store.commit([MarkProcessed(group, m.inbox_id) for m in messages if not m.recorded])
        except AlreadyProcessed:
            return False
        return True

    def _fresh(self, items: list[_Item], out: list[Settlement | None]) -> list[_Item]:
        """``items`` without those the inbox has now (acknowledged as duplicates)."""
        p, left = self.p, []
        for item in items:
            if p.store is not None and p.store.inbox_contains(p.group, item.envelope.id):
                out[item.index] = p.duplicate(item.delivery, item.envelope)
            else:
                left.append(item)
        return left

    def _wait(self, items: list[_Item], out: list[Settlement | None], delay: float) -> list[_Item]:
        """Back off ``delay`` seconds; the items still to run (released: all when the listener stops, and
        those revoked meanwhile)."""
        deadline = time.monotonic() + delay
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.p.stop.wait(min(left, 0.05)):
                break
            if any(i.delivery.revoked is not None and i.delivery.revoked.is_set() for i in items):
                break
        keep = []
        for item in items:
            revoked = item.delivery.revoked is not None and item.delivery.revoked.is_set()
            if self.p.stop.is_set() or revoked:
                out[item.index] = RELEASE
            else:
                keep.append(item)
        return keep


class Held:
    """The messages one lane holds for a batch handler, until the batch is full or its first waited long enough.

    ``works`` are the lane's deliveries, in its order.
    """

    def __init__(self, batch_of: Callable[[str], BatchSpec | None]) -> None:
        self._batch_of = batch_of
        self.works: list[Any] = []
        self.spec: BatchSpec | None = None
        self._deadline = 0.0

    def spec_of(self, work: Any) -> BatchSpec | None:
        """The batch handler of a delivery's event, if it has one."""
        env = work.envelope
        return None if env is None else self._batch_of(env.name)

    def add(self, work: Any, spec: BatchSpec) -> bool:
        """Hold ``work`` for ``spec`` (the caller ran what was held for another spec first); ``True`` when full."""
        if not self.works:
            self.spec = spec
            self._deadline = time.monotonic() + spec.max_wait
        self.works.append(work)
        return len(self.works) >= spec.max_size

    def timeout(self) -> float | None:
        """Seconds until the held batch is due; ``None`` when nothing is held."""
        return None if not self.works else max(0.0, self._deadline - time.monotonic())

    @property
    def due(self) -> bool:
        return bool(self.works) and time.monotonic() >= self._deadline

    def take(self) -> tuple[BatchSpec | None, list[Any]]:
        """The held batch, and hold nothing."""
        spec, works = self.spec, self.works
        self.spec, self.works = None, []
        return spec, works
