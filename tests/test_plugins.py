from __future__ import annotations

import os
import subprocess
import sys

import pytest

import pubsubkit
from pubsubkit import UnknownSchemeError, get_plugin_manager, hookspecs
from pubsubkit.registry import Backends, redact


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
