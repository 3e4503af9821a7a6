"""pubsubkit-mongo: MongoDB as a pubsubkit repository backend, ``mongodb://host:port/database``.

Documents live in a collection per pubsubkit collection, keyed by ``_id``; a unit of work is one
multi-document transaction holding the documents, the outbox entries and the inbox records (MongoDB 4.0 or
later, as a replica set or a sharded cluster). See :mod:`pubsubkit_mongo._store` for the layout.

Options (keyword arguments or URL query): ``database`` (default: the URL's path, else ``pubsubkit``),
``inbox_ttl`` (seconds MongoDB keeps an inbox record, default 30 days), ``transaction_timeout`` (seconds a unit
of work may take, retries included, default 30). Every other keyword argument goes to ``pymongo.MongoClient``,
and every other URL query parameter is pymongo's.

pymongo is imported when a ``mongodb://`` store is opened (or :class:`MongoStore` is first named), not when
pubsubkit loads the plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pubsubkit
from pubsubkit.lazy import lazy_attributes
from pubsubkit.plugin import StoreCapabilities, StoreSpec
from pubsubkit_mongo._options import DEFAULT_DATABASE, DEFAULT_INBOX_TTL, SCHEMES

if TYPE_CHECKING:
    from pubsubkit_mongo._store import MongoStore

__all__ = ["CAPABILITIES", "DEFAULT_DATABASE", "DEFAULT_INBOX_TTL", "MongoStore", "pubsubkit_register_stores"]

CAPABILITIES = StoreCapabilities(transactions=True, persistent=True, multi_process=True)

if not TYPE_CHECKING:
    #: :class:`MongoStore`, whose module imports pymongo, on first use.
    __getattr__ = lazy_attributes(__name__, globals(), {"MongoStore": "pubsubkit_mongo._store"})


def _open_store(url: str, **options: Any) -> MongoStore:
    """The factory of ``mongodb://`` stores: a :class:`MongoStore`, pymongo imported only now."""
    from pubsubkit_mongo._store import MongoStore

    return MongoStore(url, **options)


@pubsubkit.plugin.hookimpl
def pubsubkit_register_stores(register: Callable[[StoreSpec], None]) -> None:
    register(
        StoreSpec(
            schemes=SCHEMES,
            factory=_open_store,
            distribution="pubsubkit-mongo",
            description="MongoDB documents, with outbox and inbox in multi-document transactions",
            capabilities=CAPABILITIES,
        )
    )
