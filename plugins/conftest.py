"""Fixtures shared by the backend plugins' tests: the test servers' endpoints, and restarting a server.

Endpoints come from the environment (``scripts/servers env`` prints them), so the same tests run against
servers elsewhere. A test whose server does not answer is skipped with the command that starts it, or fails
when ``PUBSUBKIT_REQUIRE_SERVERS=1`` (the test command sets it, so that CI never counts a skip as a pass).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pubsubkit.testing import ServerControl, require_server

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "scripts" / "servers"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the Apache Kafka test server (``KAFKA_BOOTSTRAP``)."""
    return require_server("kafka", os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"), 9092)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """AMQP URL of the RabbitMQ test server (``AMQP_URL``)."""
    return require_server("rabbitmq", os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"), 5672)


@pytest.fixture(scope="session")
def aws_endpoint_url() -> str:
    """Endpoint of the SQS and SNS emulator (``AWS_ENDPOINT_URL``)."""
    return require_server("aws", os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), 4566)


@pytest.fixture(scope="session")
def dynamodb_endpoint_url() -> str:
    """Endpoint of the DynamoDB emulator, which serves one request at a time (``DYNAMODB_ENDPOINT_URL``)."""
    return require_server("dynamodb", os.environ.get("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:4567"), 4567)


@pytest.fixture(scope="session")
def mongo_uri() -> str:
    """URI of the MongoDB-wire test server (``MONGO_URI``)."""
    default = "mongodb://127.0.0.1:27017/?replicaSet=secantus&retryWrites=false"
    return require_server("mongo", os.environ.get("MONGO_URI", default), 27017)


class ScriptServerControl:
    """Stops and starts (or pauses and resumes) one test server through ``scripts/servers``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _run(self, action: str, *flags: str) -> None:
        done = subprocess.run(
            [str(SERVERS), action, *flags, self.name], capture_output=True, text=True, timeout=180, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/servers {action} {self.name} failed:\n{done.stdout}{done.stderr}")

    def stop(self) -> None:
        self._run("down", "--keep-state")

    def start(self) -> None:
        self._run("up")

    def pause(self) -> None:
        """SIGSTOP the server: to its clients, a hung server or a stalled network."""
        self._run("pause")

    def resume(self) -> None:
        self._run("resume")


@pytest.fixture(scope="session")
def script_server_control() -> Callable[[str], ServerControl]:
    """``script_server_control("kafka")``: a :class:`~pubsubkit.testing.ServerControl` over ``scripts/servers``."""
    return ScriptServerControl
