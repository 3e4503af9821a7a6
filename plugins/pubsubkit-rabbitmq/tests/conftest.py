"""Fixtures of the RabbitMQ backend's tests (the server's URL comes from plugins/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rabbitmq_support import delete_archives


@pytest.fixture(scope="session", autouse=True)
def _archives() -> Iterator[None]:
    """Streams cannot expire as the tests' queues do: delete the archives the tests made, at the end."""
    yield
    url = os.environ.get("AMQP_URL")
    if url:
        with contextlib.suppress(Exception):
            delete_archives(url)
