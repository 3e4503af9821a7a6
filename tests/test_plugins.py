from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pubsubkit
from pubsubkit import UnknownSchemeError, get_plugin_manager
from pubsubkit.plugin import Backends, hookspecs, redact


def test_builtin_backends_are_plugins() -> None:
    pm = get_plugin_manager()
    b = Backends(pm)
    assert {"memory", "sqlite"} <= set(b.brokers)
    assert {"memory", "sqlite"} <= set(b.stores)
    assert pm.has_plugin("metrics")


def test_plugins_can_be_disabled_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUBKIT_DISABLE_PLUGINS", "sqlite, metrics")
    pm = get_plugin_manager()
    assert not pm.has_plugin("metrics")
    b = Backends(pm)
    assert "sqlite" not in b.brokers
    assert "memory" in b.brokers


@pytest.mark.parametrize(
    ("url", "dist"),
    [
        ("kafka://localhost:9092", "pubsubkit-kafka"),
        ("amqp://g:g@h/", "pubsubkit-rabbitmq"),
        ("sqs://", "pubsubkit-sqs"),
    ],
)
def test_unknown_scheme_names_the_distribution(url: str, dist: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(UnknownSchemeError) as info:
        pubsubkit.open_broker(url, pm=pm)
    assert f"pip install {dist}" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_store_scheme() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(UnknownSchemeError, match="pubsubkit-mongo"):
        pubsubkit.open_store("mongodb://localhost/db", pm=pm)
    with pytest.raises(UnknownSchemeError, match="install the plugin"):
        pubsubkit.open_store("foo://bar", pm=pm)


def test_redact_hides_passwords() -> None:
    assert redact("amqp://guest:secret@host:5672/vh") == "amqp://guest:***@host:5672/vh"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"


def test_hookspecs_are_all_named_and_documented() -> None:
    specs = [n for n in dir(hookspecs) if n.startswith("pubsubkit_")]
    assert len(specs) >= 6
    for n in specs:
        assert getattr(hookspecs, n).__doc__, n


def test_cli_backends_and_unknown_scheme() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pubsubkit.cli", "backends"], capture_output=True, text=True, check=True
    ).stdout
    assert "memory" in out
    assert "sqlite" in out
    assert "multi_process" in out
    without_kafka = {**os.environ, "PUBSUBKIT_DISABLE_PLUGINS": "kafka"}
    bad = subprocess.run(
        [sys.executable, "-m", "pubsubkit.cli", "emit", "kafka://h:1", "x", "{}"],
        capture_output=True,
        text=True,
        env=without_kafka,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert "pip install pubsubkit-kafka" in bad.stderr


def test_cli_backends_lists_the_plugins_of_this_repository() -> None:
    """The backend plugins under plugins/ are installed in the development environment and in every tox env."""
    out = subprocess.run(
        [sys.executable, "-m", "pubsubkit.cli", "backends"], capture_output=True, text=True, check=True
    ).stdout
    rows = {tuple(line.split()[:3]) for line in out.splitlines()[1:] if line.strip()}
    for row in [
        ("broker", "kafka", "pubsubkit-kafka"),
        ("broker", "amqp", "pubsubkit-rabbitmq"),
        ("broker", "sqs", "pubsubkit-sqs"),
        ("store", "mongodb", "pubsubkit-mongo"),
        ("store", "dynamodb", "pubsubkit-dynamodb"),
    ]:
        assert row in rows, f"{row} not in:\n{out}"


#: The backend plugins' drivers: loading the plugins must not import them, only opening one of their backends.
DRIVERS = ("confluent_kafka", "pika", "boto3", "botocore", "pymongo")

_LOAD_PLUGINS_AND_OPEN_EMBEDDED = """
import contextlib, io, json, sys, tempfile
import pubsubkit
from pubsubkit import cli

with contextlib.redirect_stdout(io.StringIO()) as listing:  # what `pubsubkit backends` does
    assert cli.main(["backends"]) == 0
with tempfile.TemporaryDirectory() as tmp:
    for url in ("memory://", f"sqlite:///{tmp}/bus.db"):
        with pubsubkit.open_broker(url) as broker:
            broker.emitter()
        pubsubkit.open_store(url.replace("bus.db", "store.db")).close()
print(json.dumps({"listing": listing.getvalue(), "drivers": [m for m in sys.argv[1:] if m in sys.modules]}))
"""


def test_loading_the_plugins_imports_no_driver() -> None:
    """Every installed plugin is loaded, memory and SQLite backends opened: no plugin's driver is imported."""
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_PLUGINS_AND_OPEN_EMBEDDED, *DRIVERS],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    for scheme in ("kafka", "amqp", "sqs", "mongodb", "dynamodb"):  # the plugins were loaded
        assert f" {scheme} " in result["listing"], result["listing"]
    assert result["drivers"] == []


def test_a_plugins_classes_import_its_driver_when_named() -> None:
    """The transport and store classes stay importable from each plugin's package (imported on first use)."""
    code = (
        "import sys, pubsubkit_kafka, pubsubkit_rabbitmq, pubsubkit_sqs, pubsubkit_mongo;"
        "assert 'confluent_kafka' not in sys.modules;"
        "from pubsubkit_kafka import KafkaTransport; assert 'confluent_kafka' in sys.modules;"
        "from pubsubkit_rabbitmq import RabbitTransport, RabbitConsumer; assert 'pika' in sys.modules;"
        "from pubsubkit_sqs import SqsTransport; assert 'boto3' in sys.modules;"
        "from pubsubkit_mongo import MongoStore; assert 'pymongo' in sys.modules;"
        "print(KafkaTransport.__name__, RabbitConsumer.__name__, SqsTransport.__name__, MongoStore.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["KafkaTransport", "RabbitConsumer", "SqsTransport", "MongoStore"]


def test_pubsubkit_names_and_submodules_load_on_first_use() -> None:
    """``import pubsubkit`` is light, yet its public names and its submodules (``pubsubkit.codec``) still resolve."""
    code = (
        "import sys, pubsubkit;"
        "assert 'pubsubkit.codec' not in sys.modules;"
        "print(pubsubkit.codec.converter is not None, pubsubkit.Emitter.__name__, pubsubkit.envelope.new_id() != '');"
        "print(hasattr(pubsubkit, 'no_such_thing'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "Emitter", "True", "False"]
