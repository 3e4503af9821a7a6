"""pubsubkit-dynamodb: Amazon DynamoDB as a pubsubkit repository backend, ``dynamodb://?region=...&prefix=...``.

Each collection is a table ``<prefix>.<collection>`` keyed by ``id``, with a global secondary index
``<field>-index`` per indexed field; a unit of work is one ``TransactWriteItems`` call holding the documents,
the outbox entries (table ``<prefix>-outbox``, ordered by a sequence counter moved in the same transaction) and
the inbox records (table ``<prefix>-inbox``, expired by a TTL attribute). Tables are created on first use, or
beforehand with ``python -m pubsubkit_dynamodb create-tables URL`` (see :func:`create_tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pubsubkit
from pubsubkit.plugin import StoreCapabilities, StoreSpec
from pubsubkit_dynamodb._errors import TransactionTooLarge, UnsupportedUnitOfWork
from pubsubkit_dynamodb._store import MAX_TRANSACTION_ITEMS, DynamoStore

__all__ = [
    "CAPABILITIES",
    "MAX_TRANSACTION_ITEMS",
    "DynamoStore",
    "TransactionTooLarge",
    "UnsupportedUnitOfWork",
    "create_tables",
]

CAPABILITIES = StoreCapabilities(transactions=True, persistent=True, multi_process=True)


def create_tables(url: str, collections: Mapping[str, Sequence[str]] | None = None, **options: Any) -> None:
    """Create the store's tables for ``url`` if missing and wait until they are ACTIVE (idempotent).

    :param collections: collection name -> indexed fields (stored names), e.g. ``{"events": ["name"]}``.
    """
    store = DynamoStore(url, **options)
    try:
        store.create_tables(collections)
    finally:
        store.close()


@pubsubkit.plugin.hookimpl
def pubsubkit_register_stores(register: Callable[[StoreSpec], None]) -> None:
    register(
        StoreSpec(
            schemes=("dynamodb",),
            factory=DynamoStore,
            capabilities=CAPABILITIES,
            distribution="pubsubkit-dynamodb",
            description="Amazon DynamoDB: a table per collection, TransactWriteItems units of work, outbox, inbox",
        )
    )
