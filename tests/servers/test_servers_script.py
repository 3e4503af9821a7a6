"""scripts/servers, run as a user runs it.

The quick checks need nothing installed. Those that need the servers running are skipped unless
PUBSUBKIT_SERVERS=1 says they are up (``scripts/servers up`` first).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.servers

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "servers"
NAMES = ("kafka", "rabbitmq", "aws", "dynamodb", "mongo")
ENDPOINT_VARS = ("KAFKA_BOOTSTRAP", "AMQP_URL", "AWS_ENDPOINT_URL", "DYNAMODB_ENDPOINT_URL", "MONGO_URI")
needs_servers = pytest.mark.skipif(
    os.environ.get("PUBSUBKIT_SERVERS") != "1", reason="set PUBSUBKIT_SERVERS=1 once scripts/servers up has run"
)


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any endpoint, host or port variable of the servers, plus `extra`."""
    prefixes = ("KAFKA_", "AMQP_", "AWS_HOST", "AWS_PORT", "DYNAMODB_", "MONGO_", "PUBSUBKIT_SERVERS_DIR")
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS and not k.startswith(prefixes)}
    env.update(extra)
    return env


def exports(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), line
        name, _, value = line.removeprefix("export ").partition("=")
        out[name] = value.strip("'")
    return out


def pids() -> dict[str, object]:
    """name -> pid of each server (None for one elsewhere, which must answer)."""
    rows = json.loads(run("status", "--json").stdout)
    for row in rows:
        assert (row["state"] == "running" and isinstance(row["pid"], int)) or row["state"] == "remote, answering", row
    return {row["name"]: row.get("pid") for row in rows}


def test_status_runs_and_names_every_server() -> None:
    result = run("status")
    assert result.returncode in (0, 3), result.stderr  # 3: not everything is running
    for name in NAMES:
        assert name in result.stdout
    rows = json.loads(run("status", "--json").stdout)
    assert [row["name"] for row in rows] == list(NAMES)


def test_env_prints_the_default_endpoints() -> None:
    result = run("env", env=clean_env())
    assert result.returncode == 0, result.stderr
    assert exports(result.stdout) == {
        "KAFKA_BOOTSTRAP": "127.0.0.1:9092",
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:4567",
        "MONGO_URI": "mongodb://127.0.0.1:27017/?replicaSet=secantus&retryWrites=false",
    }


def test_env_follows_port_and_url_variables() -> None:
    env = clean_env(KAFKA_PORT="19092", AMQP_URL="amqp://u:p@localhost/vh", AMQP_PORT="5673", MONGO_PORT="27018")
    env.update(DYNAMODB_ENDPOINT_URL="http://localhost:4567", DYNAMODB_PORT="14567")
    got = exports(run("env", env=env).stdout)
    assert got["DYNAMODB_ENDPOINT_URL"] == "http://localhost:14567"
    assert got["KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"
    assert got["AMQP_URL"] == "amqp://u:p@localhost:5673/vh"
    assert got["MONGO_URI"] == "mongodb://127.0.0.1:27018/?replicaSet=secantus&retryWrites=false"


def test_up_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        state = tmp_path / "servers"
        result = run("up", "aws", env=clean_env(AWS_PORT=str(port), PUBSUBKIT_SERVERS_DIR=str(state)))
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use by another process" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr  # it names who holds the port
    assert not (state / "venv").exists()  # the port is checked before anything is installed


@needs_servers
def test_every_port_answers() -> None:
    endpoints = exports(run("env").stdout)
    for var in ENDPOINT_VARS:
        url = endpoints[var]
        hostport = url.split("://", 1)[-1].split("@")[-1].split("/")[0].split(",")[0]
        host, _, port = hostport.rpartition(":")
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            pass
    result = run("status")
    assert result.returncode == 0, result.stdout


@needs_servers
def test_up_twice_is_a_noop() -> None:
    first = run("up")
    assert first.returncode == 0, first.stderr
    before = pids()
    second = run("up")
    assert second.returncode == 0, second.stderr
    assert "starting" not in second.stdout
    assert pids() == before


@needs_servers
def test_restart_keeps_the_emulators_state_and_down_forgets_it() -> None:
    """``restart aws`` brings the same queues and messages back (as a real service keeps them); ``down`` does not."""
    import boto3  # the test servers' client, installed with the SQS plugin

    endpoint = exports(run("env").stdout)["AWS_ENDPOINT_URL"]
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    name = f"restart-{os.getpid()}"
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="kept")
    taken = sqs.receive_message(QueueUrl=queue)["Messages"][0]  # in flight over the restart

    restarted = run("restart", "aws")
    assert restarted.returncode == 0, restarted.stderr
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=taken["ReceiptHandle"])  # its receipt handle still holds
    sqs.send_message(QueueUrl=queue, MessageBody="after")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])] == ["after"]

    for args in (("down", "aws"), ("up", "aws")):
        done = run(*args)
        assert done.returncode == 0, done.stderr
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)


@needs_servers
def test_restart_keeps_kafkas_log_and_offsets_and_down_forgets_them() -> None:
    """``restart kafka`` keeps topics, messages and committed offsets, as a Kafka broker does; ``down`` does not."""
    from confluent_kafka import Consumer, Producer, TopicPartition  # the Kafka plugin's client

    bootstrap = exports(run("env").stdout)["KAFKA_BOOTSTRAP"]
    topic, group = f"restart-{os.getpid()}", f"restart-{os.getpid()}-g"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(5):
        producer.produce(topic, f"m{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
    consumer.close()

    restarted = run("restart", "kafka")
    assert restarted.returncode == 0, restarted.stderr
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    assert [tp.offset for tp in consumer.committed([TopicPartition(topic, 0)], timeout=30)] == [3]
    assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30) == (0, 5)
    consumer.close()

    for args in (("down", "kafka"), ("up", "kafka")):
        done = run(*args)
        assert done.returncode == 0, done.stderr
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    assert topic not in consumer.list_topics(timeout=30).topics
    consumer.close()


def dynamodb_client() -> Any:
    import boto3  # the test servers' client, installed with the DynamoDB plugin
    from botocore.config import Config

    endpoint = exports(run("env").stdout)["DYNAMODB_ENDPOINT_URL"]
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
        config=Config(max_pool_connections=16),
    )


def new_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@needs_servers
def test_dynamodb_transactions_lose_no_update_under_concurrent_failures() -> None:
    """8 threads, each 30 rounds of a two-item increment and a transaction cancelled by its condition.

    On a threaded moto server a cancelled transaction puts back whole tables as they were when it began,
    undoing increments committed meanwhile (2 of 320 lost in one measurement); the dynamodb server serves one
    request at a time, so every increment stays.
    """
    client = dynamodb_client()
    table = f"race-{os.getpid()}"
    new_table(client, table)

    def inc(key: str) -> dict[str, Any]:
        update = {"TableName": table, "Key": {"id": {"S": key}}, "UpdateExpression": "ADD n :one"}
        return {"Update": {**update, "ExpressionAttributeValues": {":one": {"N": "1"}}}}

    refused = {"TableName": table, "Key": {"id": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(id)"}
    errors: list[BaseException] = []
    # once, before the threads: botocore makes its exception classes on first access, unlocked, and threads
    # racing there get different classes, so that one thread's pytest.raises misses the exception raised
    cancelled = client.exceptions.TransactionCanceledException

    def work() -> None:
        try:
            for _ in range(30):
                client.transact_write_items(TransactItems=[inc("a"), inc("b")])
                with pytest.raises(cancelled):
                    client.transact_write_items(TransactItems=[inc("c"), {"ConditionCheck": refused}])
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for key in ("a", "b"):
        item = client.get_item(TableName=table, Key={"id": {"S": key}}, ConsistentRead=True)["Item"]
        assert item["n"] == {"N": "240"}, key
    assert "Item" not in client.get_item(TableName=table, Key={"id": {"S": "c"}}, ConsistentRead=True)
    client.delete_table(TableName=table)


@needs_servers
def test_restart_keeps_the_dynamodb_tables() -> None:
    client = dynamodb_client()
    table = f"kept-{os.getpid()}"
    new_table(client, table)
    client.put_item(TableName=table, Item={"id": {"S": "x"}, "v": {"N": "1"}})
    restarted = run("restart", "dynamodb")
    assert restarted.returncode == 0, restarted.stderr
    assert client.get_item(TableName=table, Key={"id": {"S": "x"}})["Item"]["v"] == {"N": "1"}
    client.delete_table(TableName=table)


@needs_servers
def test_dynamodb_server_drops_a_connection_that_sends_nothing() -> None:
    """One request at a time: a client that connects and goes quiet must not hold up every other client."""
    client = dynamodb_client()
    host, _, port = exports(run("env").stdout)["DYNAMODB_ENDPOINT_URL"].removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as quiet:
        quiet.sendall(b"POST / HTTP/1.1\r\n")  # a request begun, never finished
        assert "TableNames" in client.list_tables(Limit=1)
        assert quiet.recv(1) == b""  # the server closed it


def test_pause_needs_a_name_and_a_running_server(tmp_path: Path) -> None:
    assert run("pause").returncode == 2  # no NAME: a usage error, never every server at once
    result = run("pause", "mongo", env=clean_env(PUBSUBKIT_SERVERS_DIR=str(tmp_path / "servers")))
    assert result.returncode == 1
    assert "mongo: not running" in result.stderr


def state_of(name: str) -> tuple[str, list[str]]:
    """The server's state in ``status --json`` and the /proc state letters of its process group."""
    (row,) = json.loads(run("status", "--json", name).stdout)
    group = row["pid"]
    letters = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group:
                letters.append(fields[0])
    return row["state"], letters


@needs_servers
def test_pause_stops_the_process_group_resume_continues_it_and_down_stops_a_paused_server() -> None:
    paused = run("pause", "aws")
    assert paused.returncode == 0, paused.stderr
    try:
        state, letters = state_of("aws")
        assert state == "paused"
        assert letters
        assert set(letters) == {"T"}  # every process of the group, not only its leader
        assert run("status", "aws").returncode == 3  # paused is not running
    finally:
        resumed = run("resume", "aws")
    assert resumed.returncode == 0, resumed.stderr
    state, letters = state_of("aws")
    assert state == "running"
    assert "T" not in letters

    assert run("pause", "aws").returncode == 0
    down = run("down", "aws")  # SIGCONT first: a stopped process would never act on SIGTERM
    assert down.returncode == 0, down.stderr
    assert "still running" not in down.stderr  # stopped by SIGTERM, not by the SIGKILL after the timeout
    up = run("up", "aws")
    assert up.returncode == 0, up.stderr
