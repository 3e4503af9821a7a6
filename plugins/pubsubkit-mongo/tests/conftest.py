"""Fixtures of the pubsubkit-mongo tests (the server's URI comes from plugins/conftest.py's ``mongo_uri``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mongo_support import Databases


@pytest.fixture
def databases(mongo_uri: str) -> Iterator[Databases]:
    dbs = Databases(mongo_uri)
    yield dbs
    dbs.drop_all()
