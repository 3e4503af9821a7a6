"""The mistakes of a first hour with pubsubkit, each caught where it is made and named with its fix.

The argument checks of emitters and listeners are conformance case 25 (every backend); these are the rest:
schemes, SQLite files, and the log lines an operator needs to see a consumer that quietly skips or gives up.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import pubsubkit
from pubsubkit import UnknownSchemeError, get_plugin_manager
from pubsubkit.listener import Message
from pubsubkit.testing import Collector, EventKit, wait_until
from pubsubkit.testing.helpers import HookRecorder


def test_a_broker_scheme_given_to_open_store_says_it_is_a_broker() -> None:
    with pytest.raises(UnknownSchemeError, match=r"kafka:// is a message broker \(pubsubkit-kafka is"):
        pubsubkit.open_store("kafka://localhost:9092")
    with pytest.raises(UnknownSchemeError, match=r"mongodb:// is a store .* open it with pubsubkit.open_store\(\)"):
        pubsubkit.open_broker("mongodb://localhost/db")


def test_a_scheme_of_a_plugin_not_installed_names_what_it_is_and_what_to_install() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(UnknownSchemeError, match=r"kafka:// is a message broker \(pip install pubsubkit-kafka, then"):
        pubsubkit.open_store("kafka://localhost:9092", pm=pm)
    with pytest.raises(
        UnknownSchemeError, match=r"no store plugin serves dynamodb:// \(pip install pubsubkit-dynamodb"
    ):
        pubsubkit.open_store("dynamodb://", pm=pm)


@pytest.mark.parametrize(
    ("url", "opener", "right"),
    [
        ("rabbitmq://guest:guest@localhost/", pubsubkit.open_broker, "amqp"),
        ("rabbit://localhost/", pubsubkit.open_broker, "amqp"),
        ("mongo://localhost/db", pubsubkit.open_store, "mongodb"),
        ("sqlite3:///x.db", pubsubkit.open_store, "sqlite"),
    ],
)
def test_a_common_alias_of_a_scheme_names_the_right_one(url: str, opener: Any, right: str) -> None:
    with pytest.raises(UnknownSchemeError, match=f"write {right}:// instead"):
        opener(url)


@pytest.mark.parametrize(
    "content", [b"this is not a sqlite file at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_a_file_that_is_not_a_sqlite_database_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    """Not ConnectionLost, which invites a retry that can never succeed; the file is left as it was."""
    path = tmp_path / "state.db"
    path.write_bytes(content)
    with pytest.raises(pubsubkit.ConfigError, match=r"state.db: it is not a SQLite database .* point the URL"):
        pubsubkit.open_store(f"sqlite:///{path}")
    assert path.read_bytes() == content


def test_a_dead_letter_and_a_skipped_name_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """One warning per dead letter (group, name, id, reason, attempts, the error's first line, no payload); one
    info line per event name a group has no handler for, however many of its messages come."""
    kit = EventKit()
    ping, other = kit.event_type("ping"), kit.event_type("other")
    group = kit.name("g")
    recorder = HookRecorder()
    pm = get_plugin_manager()
    pm.register(recorder)

    def fail(event: Any, msg: Message) -> None:
        raise pubsubkit.FatalError("the booking no longer exists")

    caplog.set_level(logging.INFO, logger="pubsubkit.listener")
    with pubsubkit.open_broker(f"memory://{kit.name('bus')}", codec=kit.codec, pm=pm) as broker:
        listener = broker.listener(group, poll_interval=0.05)
        listener.add_handler(ping, Collector(fail=fail))
        listener.add_handler(kit.name("unrelated"), Collector())
        listener.start()
        assert listener.wait_ready(10)
        emitter = broker.emitter()
        for i in range(3):
            emitter.emit(other(n=i, note="secret-payload"))
        dead = emitter.emit(ping(n=7, note="secret-payload"))
        wait_until(lambda: len(recorder.outcomes_of(group)) >= 4, what="four messages handled")
        listener.close(10)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    [line] = [w for w in warnings if "dead-lettered" in w]
    assert line == (
        f"listener {group}: dead-lettered {kit.name('ping')} {dead.id} (fatal after 1 attempt):"
        " FatalError: the booking no longer exists"
    )
    skipped = [r.getMessage() for r in caplog.records if "no handler for event name" in r.getMessage()]
    assert len(skipped) == 1
    assert repr(kit.name("other")) in skipped[0]
    assert all(r.levelno == logging.INFO for r in caplog.records if "no handler" in r.getMessage())
    assert "secret-payload" not in caplog.text


def test_a_relay_option_out_of_range_is_named() -> None:
    with (
        pubsubkit.open_broker("memory://relay-options") as broker,
        pubsubkit.open_store("memory://relay-options") as store,
    ):
        with pytest.raises(pubsubkit.ConfigError, match="relay option batch_size=0: a whole number of at least 1"):
            broker.relay(store, batch_size=0)
        with pytest.raises(pubsubkit.ConfigError, match="relay option lease=0: a number of seconds above 0"):
            broker.relay(store, lease=0)
