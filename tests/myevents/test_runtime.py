"""Closing a service: its workers share one bounded time, well within gunicorn's graceful timeout."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest

import pubsubkit
from myevents import runtime, server
from myevents.runtime import Service, open_backends


class Clock:
    """``time.monotonic`` for the test: it moves only when a worker spends time stopping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@attrs.define
class FakeWorker:
    """A worker that spends ``takes`` seconds of the clock stopping (all it was given, if it never stops)."""

    name: str
    clock: Clock
    takes: float | None = None
    given: list[float] = attrs.Factory(list)

    def start(self) -> None:
        pass

    def stop(self, timeout: float) -> bool:
        self.given.append(timeout)
        if self.takes is None or self.takes > timeout:
            self.clock.now += timeout
            return False
        self.clock.now += self.takes
        return True

    def alive(self) -> bool:
        return True


def test_the_workers_share_the_close_timeout_and_one_that_hangs_is_left_behind(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    monkeypatch.setattr(runtime.time, "monotonic", clock)
    caplog.set_level(logging.INFO, "myevents.runtime")
    task, stuck, relay = FakeWorker("task", clock, 2.0), FakeWorker("listener", clock), FakeWorker("relay", clock, 0.0)
    name = pubsubkit.new_id()
    backends = open_backends(f"memory://bus-{name}", f"memory://store-{name}")
    app: Any = None
    service = Service("test", app, backends, [task, stuck, relay])

    service.close(timeout=15.0)

    assert (task.given, stuck.given, relay.given) == ([15.0], [13.0], [0.0])
    messages = [r.getMessage() for r in caplog.records]
    assert "listener did not stop within the 15 s of closing; going on" in messages
    assert "relay did not stop within the 15 s of closing; going on" not in messages
    assert messages[-1] == "test service stopped"
    service.close()  # idempotent
    assert len(task.given) == 1


def test_closing_fits_well_within_gunicorns_graceful_timeout() -> None:
    assert runtime.DRAIN_SECONDS < runtime.CLOSE_SECONDS <= server.GRACEFUL_SECONDS / 2
