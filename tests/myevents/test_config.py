"""Configuration: the original's config.json keys and variables, the simple variables, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from myevents import cli, config
from pubsubkit import ConfigError


def write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_defaults_are_embedded_sqlite_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ev = config.load("events", env={})
    bk = config.load("booking", env={})
    assert ev.broker_url == bk.broker_url == f"sqlite:///{tmp_path}/data/bus.db"
    assert ev.store_url == f"sqlite:///{tmp_path}/data/events.db"
    assert bk.store_url == f"sqlite:///{tmp_path}/data/booking.db"
    assert (ev.bind, bk.bind) == ("localhost:8181", "localhost:8282")
    assert (ev.workers, ev.tls, ev.max_body_bytes) == (1, False, 65536)
    other = config.load("booking", env={"MYEVENTS_DATA_DIR": "/srv/me"})
    assert (other.broker_url, other.store_url) == ("sqlite:////srv/me/bus.db", "sqlite:////srv/me/booking.db")


def test_original_config_file_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "databasetype": "mongodb",
            "dbconnection": "mongodb://db.example:27017",
            "restfulapi_endpoint": ":8181",
            "message_broker_type": "amqp",
            "amqp_message_broker": "amqp://u:p@mq.example:5672",
        },
    )
    c = config.load("events", config_file=path, env={})
    assert c.store_url == "mongodb://db.example:27017/myevents"
    assert c.broker_url == "amqp://u:p@mq.example:5672"
    assert c.bind == "0.0.0.0:8181"
    kafka = write(tmp_path, {"message_broker_type": "kafka", "kafka_message_brokers": ["k1:9092", "k2:9092"]})
    assert config.load("events", config_file=kafka, env={}).broker_url == "kafka://k1:9092,k2:9092"
    # A type alone takes the original's default address.
    assert config.load("events", config_file=write(tmp_path, {"message_broker_type": "amqp"}), env={}).broker_url == (
        "amqp://guest:guest@localhost:5672"
    )
    dynamo = write(tmp_path, {"databasetype": "dynamodb", "dbconnection": "dynamodb://eu-west-1?prefix=me_"})
    assert config.load("booking", config_file=dynamo, env={}).store_url == "dynamodb://eu-west-1?prefix=me_"


def test_original_environment_variables_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"restfulapi_endpoint": "localhost:9000", "message_broker_type": "amqp"})
    env = {
        "LISTEN_URL": "0.0.0.0:7000",
        "MONGO_URL": "mongodb://mongo/other?replicaSet=rs0",
        "KAFKA_BROKER_URLS": "k1:9092, k2:9092",
    }
    c = config.load("booking", config_file=path, env=env)
    assert c.bind == "0.0.0.0:7000"
    assert c.store_url == "mongodb://mongo/other?replicaSet=rs0"
    assert c.broker_url == "kafka://k1:9092,k2:9092"
    assert config.load("booking", env={"MONGO_URL": "mongodb://m?w=1"}).store_url == "mongodb://m/myevents?w=1"
    assert config.load("events", env={"AMQP_BROKER_URL": "amqp://mq"}).broker_url == "amqp://mq"


def test_the_simple_variables_and_flags_win(tmp_path: Path) -> None:
    env = {
        "MYEVENTS_BROKER_URL": "memory://bus",
        "MYEVENTS_STORE_URL": "memory://store",
        "AMQP_BROKER_URL": "amqp://mq",
        "MONGO_URL": "mongodb://m",
        "LISTEN_URL": ":1",
        "MYEVENTS_CONFIG": write(tmp_path, {"restfulapi_endpoint": ":2"}),
        "MYEVENTS_WORKERS": "3",
    }
    c = config.load("events", env=env, bind="127.0.0.1:5555", workers=2)
    assert (c.broker_url, c.store_url, c.bind, c.workers) == ("memory://bus", "memory://store", "127.0.0.1:5555", 2)
    assert config.load("events", env=env).workers == 3


def test_tls_serves_on_the_tls_endpoint(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    path = write(tmp_path, {"restfulapi-tlsendpoint": "localhost:9191", "certfile": str(cert), "keyfile": str(key)})
    c = config.load("events", config_file=path, env={})
    assert (c.tls, c.bind, c.base_url) == (True, "localhost:9191", "https://localhost:9191")
    c = config.load("events", env={}, certfile=str(cert), keyfile=str(key))
    assert (c.tls, c.bind) == (True, "localhost:8181")


@pytest.mark.parametrize(
    ("data", "env", "message"),
    [
        ({"message_broker_type": "carrier-pigeon"}, {}, "message_broker_type: 'carrier-pigeon' is not one of"),
        ({"databasetype": "oracle"}, {}, "databasetype: 'oracle' is not one of"),
        ({"restfulapi_endpoint": "localhost"}, {}, "restfulapi_endpoint: 'localhost' is not host:port"),
        ({"restfulapi_endpoint": 8181}, {}, "restfulapi_endpoint must be a string"),
        ({"kafka_message_brokers": "k1:9092"}, {}, "kafka_message_brokers must be a list"),
        ({"dbconnection": "postgres://x"}, {}, "dbconnection: 'postgres://x' is not a mongodb:// or dynamodb://"),
        ({"colour": "red"}, {}, "unknown key 'colour'"),
        ({"message_broker_type": "sqs"}, {}, "sqs needs sqs_message_broker"),
        ({"certfile": "/nope.pem"}, {}, "set certfile and keyfile"),
        ({"certfile": "/nope.pem", "keyfile": "/nope.key"}, {}, "certfile /nope.pem does not exist"),
        ({}, {"AMQP_BROKER_URL": "amqp://a", "KAFKA_BROKER_URLS": "k:1"}, "are both set"),
        ({}, {"LISTEN_URL": "somewhere"}, "LISTEN_URL: 'somewhere' is not host:port"),
        ({}, {"MYEVENTS_BROKER_URL": "bus.db"}, "MYEVENTS_BROKER_URL: 'bus.db' is not a URL"),
        ({}, {"MYEVENTS_WORKERS": "many"}, "MYEVENTS_WORKERS: 'many' is not a whole number"),
        ({}, {"MYEVENTS_LOG_LEVEL": "loud"}, "MYEVENTS_LOG_LEVEL: 'loud' is not one of"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(
    tmp_path: Path, data: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        config.load("events", config_file=write(tmp_path, data), env=env)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not readable JSON"):
        config.load("events", config_file=str(tmp_path / "bad.json"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        config.load("events", config_file=str(tmp_path / "missing.json"), env={})


def test_the_command_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, {"message_broker_type": "carrier-pigeon"})
    assert cli.main(["event-service", "--config", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("myevents: error: config key message_broker_type")
    assert cli.main(["booking-service", "--data-dir", str(tmp_path), "--workers", "0"]) == 2
    assert "workers must be at least 1" in capsys.readouterr().err


def test_the_command_checks_the_backends_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYEVENTS_BROKER_URL", "carrier://pigeon")
    assert cli.main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("myevents: error: no message broker plugin serves carrier://")
    assert err.count("\n") == 1


def test_shutdown_delay(tmp_path: Path) -> None:
    env = {"MYEVENTS_DATA_DIR": str(tmp_path)}
    assert config.load("events", env=env).shutdown_delay == 0
    assert config.load("events", env={**env, "MYEVENTS_SHUTDOWN_DELAY": "5"}).shutdown_delay == 5
    for bad in ("soon", "-1", "61"):
        with pytest.raises(ConfigError, match="MYEVENTS_SHUTDOWN_DELAY"):
            config.load("events", env={**env, "MYEVENTS_SHUTDOWN_DELAY": bad})
