"""What a batch handler gets: :class:`Batch`, and :class:`BatchSpec`, a batch handler with its limits (the
listener's :meth:`~pubsubkit.listener.Listener.on_batch`; how batches run: :mod:`pubsubkit.batching`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.message import Message
from pubsubkit.store import Store, UnitOfWork

__all__ = ["Batch", "BatchHandler", "BatchSpec"]

#: A batch handler: called with the decoded events, in order, and their :class:`Batch`.
BatchHandler = Callable[[list[Any], "Batch"], object]


@attrs.define
class Batch:
    """What a batch handler gets besides the events: one :class:`~pubsubkit.message.Message` per event (same
    order), the group, the attempt, and an inbox-aware unit of work for the whole batch.

    :ivar attempt: 1 on the first call with these messages, then 2, 3... as the batch is retried; a message
        handled again alone after the batch's last attempt comes with the attempt after that.
    """

    messages: list[Message]
    group: str
    attempt: int
    store: Store | None = None
    _uow: UnitOfWork | None = None

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def ids(self) -> list[str]:
        """The message ids, in the order of the events."""
        return [m.id for m in self.messages]

    @property
    def recorded(self) -> bool:
        """Whether a unit of work of this batch committed the inbox records of its messages."""
        return self._uow is not None and self._uow.committed

    def unit_of_work(self) -> UnitOfWork:
        """A unit of work that also records every message of the batch in the group's inbox, atomically with
        the writes. If one of them was processed meanwhile by another delivery, committing raises
        AlreadyProcessed and nothing is written: the listener then runs the batch again without it."""
        if self.store is None:
            raise ConfigError("Batch.unit_of_work() needs a listener created with store=...")
        uow = UnitOfWork(self.store)
        if self._uow is None:
            for m in self.messages:
                if not m.recorded:
                    uow.mark_processed(self.group, m.inbox_id)
            self._uow = uow
        return uow


@attrs.frozen(eq=False)
class BatchSpec:
    """A batch handler and its limits, as :meth:`Listener.on_batch <pubsubkit.listener.Listener.on_batch>` took
    them: a batch is run once it has ``max_size`` messages or its first waited ``max_wait`` seconds."""

    fn: BatchHandler
    max_size: int
    max_wait: float
    name: str

    def call(self, events: list[Any], batch: Batch) -> None:
        """Run the handler (an ``async def`` one is run to its end by the listener's coroutine runner)."""
        from pubsubkit.coroutines import not_awaited

        result = self.fn(events, batch)
        if result is not None and hasattr(result, "__await__"):
            raise not_awaited(self.fn, result)
