"""Helpers of the RabbitMQ backend's tests: URLs with a per-test exchange, raw pika connections."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika


def with_query(url: str, **options: str) -> str:
    """``url`` with ``options`` added to its query."""
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
