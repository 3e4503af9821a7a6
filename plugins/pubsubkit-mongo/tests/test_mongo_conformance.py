"""The repository conformance suite against the MongoDB-wire test server."""

from __future__ import annotations

import pytest
from mongo_support import Databases

from pubsubkit.testing import RepositorySuite


class TestMongoRepository(RepositorySuite):
    @pytest.fixture
    def store_url(self, databases: Databases) -> str:
        return databases.url()

    @pytest.fixture
    def other_store_url(self, databases: Databases) -> str:
        return databases.url()
