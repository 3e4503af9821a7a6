"""What the emitter and consumer processes (test_sqlite_processes.py, the fault suite) share: event and effect."""

from __future__ import annotations

import attrs

import pubsubkit


@pubsubkit.event("procTicked")
@attrs.frozen
class Ticked:
    seq: int


@attrs.frozen
class Applied:
    """One effect of one message in one group: written with the inbox record, in one transaction."""

    id: str
    message_id: str
    group: str
    seq: int
    pid: int


def applied(store: pubsubkit.Store) -> pubsubkit.Collection[Applied]:
    return store.collection("applied", Applied, indexes=["group"])
