"""The broker and store of a test run, picked by name, each on names of its own (topic, exchange, prefix, database).

Names: brokers ``embedded`` (SQLite in the data directory), ``kafka``, ``rabbitmq``, ``sqs``; stores ``embedded``,
``mongo``, ``dynamodb``. Endpoints come from the environment that ``scripts/servers env`` prints. A server that
does not answer skips the test with the command that starts it, or fails it under ``PUBSUBKIT_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pubsubkit.testing import require_server as require

ROOT = Path(__file__).resolve().parents[2]
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
#: The server behind each backend name, as scripts/servers calls it.
SERVER = {
    "kafka": "kafka",
    "rabbitmq": "rabbitmq",
    "sqs": "aws",
    "mongo": "mongo",
    "dynamodb": "dynamodb",
}


def broker_url(kind: str, run: str, data: Path) -> str:
    """The broker ``kind`` on a topic, exchange or queue prefix named ``run``."""
    if kind == "embedded":
        return f"sqlite:///{data}/bus.db"
    if kind == "kafka":
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
        require("kafka", bootstrap, 9092)
        # A group prefix of its own per run: a group's dead members from an earlier run never hold up a rebalance.
        options = f"topic={run}&group_prefix={run}.&session.timeout.ms=6000&heartbeat.interval.ms=500"
        return f"kafka://{bootstrap}?{options}"
    if kind == "rabbitmq":
        amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
        require("rabbitmq", amqp, 5672)
        return f"{amqp}{'&' if '?' in amqp else '?'}exchange={run}"
    if kind == "sqs":
        aws = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
        require("aws", aws, 4566)
        return f"sqs://?endpoint_url={aws}&region=us-east-1&prefix={run}"
    raise pytest.UsageError(f"broker {kind!r}: expected embedded, kafka, rabbitmq or sqs")


def store_url(kind: str, run: str, data: Path) -> str:
    """The store ``kind`` in a database or table prefix named ``run``."""
    if kind == "embedded":
        return f"sqlite:///{data}/state.db"
    if kind == "mongo":
        uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/?replicaSet=secantus&retryWrites=false")
        require("mongo", uri, 27017)
        head, _, query = uri.partition("?")
        return f"{head.rstrip('/')}/{run}" + (f"?{query}" if query else "")
    if kind == "dynamodb":
        endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:4567")
        require("dynamodb", endpoint, 4567)
        return f"dynamodb://?endpoint_url={endpoint}&region=us-east-1&prefix={run}"
    raise pytest.UsageError(f"store {kind!r}: expected embedded, mongo or dynamodb")


def servers(action: str, name: str) -> None:
    """``scripts/servers ACTION NAME`` (down, up, restart); fails the test with the script's output.

    ``down`` keeps the server's state, so the next ``up`` is the same server back, as after a real outage.
    """
    flags = ["--keep-state"] if action == "down" else []
    done = subprocess.run(
        [str(ROOT / "scripts" / "servers"), action, *flags, name],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/servers {action} {name} failed:\n{done.stdout}{done.stderr}")
