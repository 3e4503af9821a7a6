"""The plumbing of the DynamoDB store: the client, its errors, the tables, paging, batched deletes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pubsubkit.codec import Codec
from pubsubkit.errors import Closed, ConfigError, PubsubkitError
from pubsubkit.retry import Backoff
from pubsubkit.store import Store
from pubsubkit_dynamodb._errors import is_client_error, translate
from pubsubkit_dynamodb._options import Settings
from pubsubkit_dynamodb._tables import TableInfo, Tables

R = TypeVar("R")


#: Waits before a request is sent again (unprocessed items, a write lost to a race): a random while, growing
#: with each round, at most a quarter second.
CONTENTION_BACKOFF = Backoff(initial=0.002, multiplier=2.0, max_delay=0.25, jitter=1.0)


class BaseStore(Store):
    """What the document, outbox and inbox parts of the DynamoDB store share."""

    def __init__(self, url: str, codec: Codec | None = None, **options: Any) -> None:
        super().__init__(codec)
        self.url = url
        self.settings = Settings.parse(url, options)
        self.client = make_client(self.settings)
        self.tables = Tables(self.client, self.settings, self.closing)
        # One emitting transaction at a time per process. Not for correctness (the counter's condition orders
        # emitters across processes): every emitting transaction writes the one counter item, so concurrent ones
        # would cancel each other (a stale counter, or TransactionConflict on DynamoDB) and be sent again.
        self._seq_lock = threading.Lock()
        self._seq: int | None = None  # the outbox counter as this process last saw it

    def _pause(self, attempt: int) -> None:
        """Wait before sending a request again (``attempt`` from 0); :class:`Closed` when the store closes."""
        if self.closing.wait(CONTENTION_BACKOFF.delay(attempt + 1)):
            raise Closed(f"store {self.url} is closed")

    def _call(self, what: str, fn: Callable[..., R], **request: Any) -> R:
        if self._closed:
            raise Closed(f"store {self.url} is closed")
        try:
            return fn(**request)
        except Exception as exc:
            raise self._error(exc, what) from exc

    def _error(self, exc: Exception, what: str) -> PubsubkitError:
        if is_client_error(exc, "ResourceNotFoundException"):
            self.tables.forget()
            self._seq = None
        return translate(exc, what)

    def _info(self, collection: str) -> TableInfo:
        if self._closed:
            raise Closed(f"store {self.url} is closed")
        return self.tables.known(collection) or self.tables.ensure_collection(collection, ())

    def _system(self) -> None:
        if self._closed:
            raise Closed(f"store {self.url} is closed")
        self.tables.ensure_system()

    def _pages(self, operation: str, what: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a query or scan, page after page (``LastEvaluatedKey``)."""
        fn = getattr(self.client, operation)
        request = dict(request)
        while True:
            page = self._call(what, fn, **request)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _delete_many(self, table: str, keys: list[dict[str, Any]]) -> None:
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            attempt = 0
            while pending:
                done = self._call(f"deleting from {table}", self.client.batch_write_item, RequestItems=pending)
                pending = done.get("UnprocessedItems") or {}
                if pending:
                    self._pause(attempt)
                    attempt += 1

    def ping(self) -> None:
        self._call("reaching DynamoDB", self.client.list_tables, Limit=1)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.client.close()


def make_client(settings: Settings) -> Any:
    """A boto3 DynamoDB client (thread-safe; it does not connect until the first request)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.timeout,
        read_timeout=max(settings.timeout, 5.0),
        max_pool_connections=64,
    )
    session = boto3.session.Session()
    try:
        return session.client(
            "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
        )
    except NoRegionError:
        raise ConfigError(
            "no AWS region for dynamodb://: add ?region=us-east-1 to the URL or set AWS_REGION / AWS_DEFAULT_REGION"
        ) from None
