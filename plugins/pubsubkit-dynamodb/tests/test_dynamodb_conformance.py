"""The repository conformance suite against DynamoDB (the moto emulator of the test servers)."""

from __future__ import annotations

import pytest

from pubsubkit.testing import RepositorySuite, unique_name


class TestDynamoRepository(RepositorySuite):
    @pytest.fixture
    def store_url(self, dynamodb_endpoint_url: str) -> str:
        return f"dynamodb://?region=us-east-1&endpoint_url={dynamodb_endpoint_url}&prefix={unique_name('ddb')}"

    @pytest.fixture
    def other_store_url(self, dynamodb_endpoint_url: str) -> str:
        return f"dynamodb://?region=us-east-1&endpoint_url={dynamodb_endpoint_url}&prefix={unique_name('ddb')}"
