"""Fixtures of the DynamoDB plugin's tests: moto credentials, and a store URL with a table prefix of its own."""

from __future__ import annotations

import pytest

from pubsubkit.testing import unique_name


@pytest.fixture(autouse=True)
def aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any key and secret do for the emulator; never the developer's own."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def dynamodb_url(endpoint: str, prefix: str | None = None) -> str:
    """A store URL on the emulator with a fresh table prefix."""
    return f"dynamodb://?region=us-east-1&endpoint_url={endpoint}&prefix={prefix or unique_name('ddb')}"
