"""What a handler gets besides the event: :class:`Message`, and the inbox ids of a message's handlers."""

from __future__ import annotations

import attrs

from pubsubkit.envelope import Envelope, Header
from pubsubkit.errors import ConfigError
from pubsubkit.store import Store, UnitOfWork

__all__ = ["Message", "inbox_id"]


def inbox_id(message_id: str, position: int, count: int) -> str:
    """The id under which handler number ``position`` (from 0) of ``count`` records a message in the inbox.

    The last handler records the message id itself (so that "the group processed this message" is one
    lookup); the ones before it record ``<message id>#<position>``, so that a retry runs again only the
    handlers that did not finish.
    """
    return message_id if position == count - 1 else f"{message_id}#{position}"


@attrs.define
class Message:
    """What a handler gets besides the event: the envelope, the group, the attempt, and an inbox-aware unit of
    work for handlers that write state.

    :ivar inbox_id: the id recorded in the group's inbox once this handler is done with the message (see
        :func:`inbox_id`).
    :ivar reply_headers_extra: headers added to :meth:`reply_headers`, so to every event the handler emits
        through :meth:`unit_of_work`; handler middleware sets them (a tracing plugin's ``traceparent``).
    """

    envelope: Envelope
    group: str
    attempt: int
    store: Store | None = None
    inbox_id: str = ""
    reply_headers_extra: dict[str, str] = attrs.field(factory=dict)
    _marked: UnitOfWork | None = None

    def __attrs_post_init__(self) -> None:
        if not self.inbox_id:
            self.inbox_id = self.envelope.id

    @property
    def id(self) -> str:
        """The message id (the envelope's)."""
        return self.envelope.id

    @property
    def recorded(self) -> bool:
        """Whether a unit of work of this handler committed the inbox record."""
        return self._marked is not None and self._marked.committed

    def reply_headers(self) -> dict[str, str]:
        """Headers for events caused by this one: same correlation id, this message as the causation."""
        hdrs = {
            Header.CORRELATION_ID: self.envelope.correlation_id or self.envelope.id,
            Header.CAUSATION_ID: self.envelope.id,
        }
        tp = self.envelope.headers.get(Header.TRACEPARENT)
        if tp:
            hdrs[Header.TRACEPARENT] = tp
        hdrs.update(self.reply_headers_extra)
        return hdrs

    def unit_of_work(self) -> UnitOfWork:
        """A unit of work that also records this message in the group's inbox, atomically with the writes.

        If the message was processed before, committing raises AlreadyProcessed and nothing is written; the
        listener treats that as success. Only the first unit of work a handler opens carries the record;
        if it is abandoned, the listener records the message after the handler returns.
        """
        if self.store is None:
            raise ConfigError("Message.unit_of_work() needs a listener created with store=...")
        uow = UnitOfWork(self.store, headers=self.reply_headers())
        if self._marked is None:
            uow.mark_processed(self.group, self.inbox_id)
            self._marked = uow
        return uow
