"""The embedded SQLite backend, ``sqlite:///path/to/file.db``: a durable broker and store, no server.

Several processes on one machine may share the file (WAL mode). The broker is a message log with a committed
offset and leased claims per consumer group: members of a group share the messages, every group gets every
message (and a new group reads the log from the start), messages of one key are handed out in order, and a
message whose consumer died comes back when its lease runs out. The store keeps each collection in a table of
JSON documents with expression indexes on the queried fields; a unit of work is one transaction holding the
documents, the outbox entries and the inbox records.

Options (keyword arguments or URL query): ``lease`` (seconds a consumer holds a message, default 30),
``poll`` (seconds between looks for messages from other processes while idle, default 0.01; every
millisecond while messages flow), ``synchronous``
(``NORMAL`` default: a committed message survives a process crash; ``FULL``: also a power cut); an unknown
option is a :class:`~pubsubkit.errors.ConfigError`.

Modules: ``options`` (the URL and the options record), ``wire`` (connections and rows), ``transport`` (the
broker), ``consumer`` (a member of a group), ``store`` (documents, outbox, inbox); the hook implementations
are here.
"""

from __future__ import annotations

from typing import Any

from pubsubkit.backends.sqlite.consumer import SqliteConsumer
from pubsubkit.backends.sqlite.options import CAPABILITIES, SqliteOptions, parse, parse_url
from pubsubkit.backends.sqlite.store import SqliteStore
from pubsubkit.backends.sqlite.transport import SqliteTransport
from pubsubkit.plugin import BrokerSpec, StoreCapabilities, StoreSpec, hookimpl

__all__ = [
    "CAPABILITIES",
    "SqliteConsumer",
    "SqliteOptions",
    "SqliteStore",
    "SqliteTransport",
    "parse",
    "parse_url",
    "pubsubkit_register_brokers",
    "pubsubkit_register_stores",
]


@hookimpl
def pubsubkit_register_brokers(register: Any) -> None:
    register(
        BrokerSpec(
            schemes=("sqlite",),
            factory=SqliteTransport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit",
            description="embedded durable log in a SQLite file, shared by the processes of one machine",
        )
    )


@hookimpl
def pubsubkit_register_stores(register: Any) -> None:
    register(
        StoreSpec(
            schemes=("sqlite",),
            factory=SqliteStore,
            distribution="pubsubkit",
            description="embedded document store in a SQLite file, with outbox and inbox",
            capabilities=StoreCapabilities(transactions=True, persistent=True, multi_process=True),
        )
    )
