"""Fixtures of the SQS plugin's tests: credentials for the emulator and raw boto3 clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, aws_endpoint_url: str) -> str:
    """Any key and secret, region us-east-1: the emulator checks no signatures."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return aws_endpoint_url


@pytest.fixture
def sqs_client(aws_env: str) -> Iterator[Any]:
    """A raw boto3 SQS client on the emulator."""
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=aws_env)
    yield client
    client.close()


@pytest.fixture
def sns_client(aws_env: str) -> Iterator[Any]:
    """A raw boto3 SNS client on the emulator."""
    client = boto3.client("sns", region_name="us-east-1", endpoint_url=aws_env)
    yield client
    client.close()
