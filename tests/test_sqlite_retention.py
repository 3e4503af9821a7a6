"""Keeping a SQLite log's size in check: trim what every group settled, retention, groups, and the commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pubsubkit
from pubsubkit.backends.sqlite.transport import SqliteTransport
from pubsubkit.testing import EventKit, wait_until


def _count(url: str) -> int:
    with pubsubkit.open_broker(url) as broker:
        assert isinstance(broker.transport, SqliteTransport)
        return int(broker.transport.db.read(lambda c: c.execute("SELECT COUNT(*) FROM pk_messages").fetchone()[0]))


def test_trim_deletes_only_what_every_group_settled(tmp_path: Path) -> None:
    kit = EventKit()
    ping = kit.event_type()
    url = f"sqlite:///{tmp_path}/bus.db"
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        transport = broker.transport
        assert isinstance(transport, SqliteTransport)
        assert transport.trim() == 0  # no group has joined: nothing is settled
        fast, slow = transport.consumer("fast", None), transport.consumer("slow", None)
        broker.emitter().emit_many([ping(n=i) for i in range(10)])
        fast.ack(fast.receive(10, 1))
        slow.ack(slow.receive(4, 1))
        assert transport.groups() == {"fast": 0, "slow": 6}
        assert transport.trim(older_than=3600) == 0  # settled, but younger than an hour
        assert transport.trim() == 4  # what slow settled too
        assert [d.envelope.payload for d in slow.receive(10, 1) if d.envelope] == [
            e.payload for e in [broker.emitter().envelope(ping(n=i)) for i in range(4, 10)]
        ]
        fast.close()
        slow.close()
        assert transport.forget_group("slow")
        assert not transport.forget_group("slow")
        assert transport.trim() == 6
        late = transport.consumer("late", None)  # a group joining after a trim starts at the first kept
        assert late.receive(10, 0.2) == []
        late.close()
    assert _count(url) == 0


def test_retention_trims_after_a_publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kit = EventKit()
    ping = kit.event_type()
    url = f"sqlite:///{tmp_path}/bus.db?retention=0"
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        transport = broker.transport
        assert isinstance(transport, SqliteTransport)
        consumer = transport.consumer("g", None)
        broker.emitter().emit_many([ping(n=i) for i in range(5)])
        consumer.ack(consumer.receive(5, 1))
        monkeypatch.setattr(transport, "_next_trim", 0.0)
        broker.emitter().emit(ping(n=5))  # this publish trims the five settled ones
        consumer.close()
    assert _count(url) == 1
    with pytest.raises(pubsubkit.ConfigError, match="retention='soon': not a number"):
        pubsubkit.open_broker(f"sqlite:///{tmp_path}/bus.db?retention=soon")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pubsubkit.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_groups_and_trim_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bus.db"
    assert _cli("emit", url, "ping", '{"n": 1}').returncode == 0
    tailed = _cli("tail", url, "--count", "1")  # a group of its own, forgotten when it leaves
    assert '"name": "ping"' in tailed.stdout
    assert _cli("groups", url).stdout == ""
    assert _cli("trim", url).stdout.strip() == "trimmed 0 messages"
    assert _cli("tail", url, "--count", "1", "--group", "audit").returncode == 0
    assert _cli("groups", url).stdout.strip() == '{"group": "audit", "unsettled": 0}'
    assert _cli("trim", url, "--older-than", "0").stdout.strip() == "trimmed 1 messages"
    assert _cli("groups", url, "--forget", "audit").stdout.strip() == "forgot audit"
    refused = _cli("trim", "memory://x")
    assert refused.returncode == 2
    assert "only a sqlite:// broker keeps a log that pubsubkit trims" in refused.stderr


def test_dlq_replay_all(tmp_path: Path) -> None:
    """``pubsubkit dlq URL --replay-all`` replays every listed letter; --replay and --replay-all exclude each other."""
    kit = EventKit()
    ping = kit.event_type()
    url = f"sqlite:///{tmp_path}/bus.db"
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        listener = broker.listener("picky", poll_interval=0.01)

        def refuse(event: object, msg: object) -> None:
            raise pubsubkit.FatalError("no")

        listener.add_handler(ping, refuse)
        listener.start()
        sent = [broker.emitter().emit(ping(n=i)).id for i in range(3)]
        wait_until(lambda: len(broker.transport.dead_letters("picky")) == 3, what="three dead letters")
        listener.close(10)
    done = _cli("dlq", url, "--group", "picky", "--replay-all")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("replayed ") == 3
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        assert broker.transport.dead_letters("picky") == []
        consumer = broker.transport.consumer("later", None)
        ids = [d.envelope.id for d in consumer.receive(10, 1) if d.envelope]
        consumer.close()
    assert sorted(ids) == sorted(sent + sent), "each replayed message is in the log again, with its id"
    both = _cli("dlq", url, "--replay", "x", "--replay-all")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert _cli("dlq", url, "--replay-all").stderr.strip() == "no dead letters to replay"


def test_a_group_moved_back_receives_again_from_the_start_or_a_time(tmp_path: Path) -> None:
    kit = EventKit()
    ping = kit.event_type()
    url = f"sqlite:///{tmp_path}/bus.db"
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        transport = broker.transport
        assert isinstance(transport, SqliteTransport)
        consumer = transport.consumer("g", None)
        early = broker.emitter().emit_many([ping(n=i) for i in range(3)])
        middle = early[-1].occurred_at
        late = broker.emitter().emit_many([ping(n=i) for i in range(3, 5)])
        consumer.ack(consumer.receive(10, 1))
        assert consumer.receive(10, 0.1) == []
        assert transport.reset_group("g", late[0].occurred_at) == 2
        assert [d.envelope.id for d in consumer.receive(10, 1) if d.envelope] == [e.id for e in late]
        assert transport.reset_group("g") == 5
        again = consumer.receive(10, 1)
        assert [d.envelope.id for d in again if d.envelope] == [e.id for e in early + late]
        consumer.ack(again)
        consumer.close()
        assert middle <= late[0].occurred_at
        with pytest.raises(pubsubkit.NotFound, match="no consumer group nobody"):
            transport.reset_group("nobody")
    moved = _cli("replay", url, "--group", "g", "--from", "earliest")
    assert moved.stdout.strip() == "group g receives 5 messages again"
    bad = _cli("replay", url, "--group", "g", "--from", "yesterday")
    assert bad.returncode == 2
    assert "use earliest or a time like" in bad.stderr
    unknown = _cli("replay", "memory://x", "--group", "g")  # a memory broker of its own: no group joined it
    assert unknown.returncode == 2
    assert "no consumer group g on this memory broker" in unknown.stderr
