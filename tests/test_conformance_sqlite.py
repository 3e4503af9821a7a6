"""The conformance suite against the embedded SQLite backend."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pubsubkit.envelope import new_id
from pubsubkit.testing import MessagingSuite, RepositorySuite


class TestSqliteMessaging(MessagingSuite):
    @pytest.fixture
    def broker_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/bus.db"

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/state.db"

    @pytest.fixture
    def publish_undecodable(self, tmp_path: Path) -> Callable[[str, str | None], None]:
        def publish(name: str, key: str | None) -> None:
            with contextlib.closing(sqlite3.connect(tmp_path / "bus.db")) as db, db:
                db.execute(
                    "INSERT INTO pk_messages(id, name, key, occurred_at, headers, payload) VALUES (?,?,?,?,?,?)",
                    (new_id(), name, key, "not a time", b"{broken headers", b"\xff\xfe"),
                )

        return publish


class TestSqliteRepository(RepositorySuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/state.db"

    @pytest.fixture
    def other_store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/other.db"

    @pytest.fixture
    def relay_broker_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/bus.db"
