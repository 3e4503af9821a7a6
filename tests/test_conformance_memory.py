"""The conformance suite against the in-process backend."""

from __future__ import annotations

import pytest

from pubsubkit.testing import MessagingSuite, RepositorySuite, unique_name


class TestMemoryMessaging(MessagingSuite):
    @pytest.fixture
    def broker_url(self) -> str:
        return f"memory://{unique_name('bus')}"


class TestMemoryRepository(RepositorySuite):
    @pytest.fixture
    def store_url(self) -> str:
        return f"memory://{unique_name('state')}"

    @pytest.fixture
    def other_store_url(self) -> str:
        return f"memory://{unique_name('other')}"
