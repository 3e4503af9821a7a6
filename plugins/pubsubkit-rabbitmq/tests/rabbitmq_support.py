"""Helpers of the RabbitMQ backend's tests: URLs with a per-test exchange, raw pika connections."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika

#: Exchanges the tests made, whose archives (streams, which cannot expire) are deleted at the end of the session.
EXCHANGES: set[str] = set()


def with_query(url: str, **options: str) -> str:
    """``url`` with ``options`` added to its query (an ``exchange`` is noted, for :func:`delete_archives`)."""
    if "exchange" in options:
        EXCHANGES.add(options["exchange"])
    parts = urlsplit(url)
    extra = "&".join(f"{k}={v}" for k, v in options.items())
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


@contextlib.contextmanager
def raw_channel(amqp_url: str) -> Iterator[Any]:
    """A channel of a plain pika connection to the test server, closed afterwards."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield conn.channel()
    finally:
        if conn.is_open:
            conn.close()


def delete_archives(amqp_url: str) -> None:
    """Delete the archive stream of every exchange the tests made."""
    with raw_channel(amqp_url) as ch:
        for exchange in sorted(EXCHANGES):
            ch.queue_delete(f"{exchange}.archive")
    EXCHANGES.clear()
