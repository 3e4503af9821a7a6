"""What the fault scenarios share: the backends under test, the stream's size, and :class:`Stream`.

conftest.py puts ``tests/procs`` and ``tests/myevents`` on the path first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from backend_urls import broker_url
from fault_table import Row
from proc_model import Applied, applied

import pubsubkit
from pubsubkit.testing import unique_name, wait_until

PROCS = Path(__file__).resolve().parents[1] / "procs"

BROKER = os.environ.get("PUBSUBKIT_FAULT_BROKER", "embedded")
STORE = os.environ.get("PUBSUBKIT_FAULT_STORE", "")
FULL = os.environ.get("PUBSUBKIT_FAULT_SIZE", "quick") == "full"
COUNT = int(os.environ.get("PUBSUBKIT_FAULT_COUNT", 10_000 if FULL else 3_000))
#: Events per second: long enough a stream for the faults to land in it.
RATE = float(os.environ.get("PUBSUBKIT_FAULT_RATE", 400.0 if FULL else 200.0))
WAIT = 180.0


def not_applicable(table: list[Row], scenario: str, why: str) -> None:
    table.append(Row(scenario, note=f"not run: {why}"))
    pytest.skip(why)


class Stream:
    """An emitter process and consumer processes of one group, on the broker under test.

    The consumers keep their inbox and effects in ``state`` (a store URL; SQLite in ``tmp`` by default).
    """

    def __init__(self, tmp: Path, state: str = "") -> None:
        self.tmp = tmp
        run = unique_name("fault")
        self.bus = broker_url(BROKER, run, tmp)
        self.state = state or f"sqlite:///{tmp}/state.db"
        setup = pubsubkit.open_store(self.state)
        applied(setup)  # the schema, before the processes start at once
        setup.close()
        self.group = unique_name("group")
        self.members: dict[str, subprocess.Popen[bytes]] = {}
        self.emitter: subprocess.Popen[str] | None = None

    def record(self, member: str) -> Path:
        return self.tmp / f"{member}.ids"

    def consumer(self, member: str, mode: str = "one") -> None:
        """Start a consumer process; ``mode`` ``batch`` handles with a batch handler."""
        record = str(self.record(member))
        args = [sys.executable, str(PROCS / "consume.py"), self.bus, self.state, self.group, record, mode]
        self.members[member] = subprocess.Popen(args)
        wait_until(lambda: Path(f"{self.record(member)}.ready").exists(), 120, f"consumer {member} to join")

    def emit(self, count: int, rate: float) -> None:
        args = [sys.executable, str(PROCS / "emit.py"), self.bus, str(count), str(rate)]
        env = {**os.environ, "EMIT_RETRY_FOR": "60"}
        self.emitter = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)

    def emitted(self) -> dict[str, Any]:
        assert self.emitter is not None
        out, _ = self.emitter.communicate(timeout=WAIT)
        result: dict[str, Any] = json.loads(out)
        return result

    def effects(self) -> list[Applied]:
        store = pubsubkit.open_store(self.state)
        try:
            return list(applied(store).find(group=self.group))
        finally:
            store.close()

    def wait_applied(self, count: int) -> None:
        def done() -> bool:
            return len({e.seq for e in self.effects()}) >= count

        wait_until(done, WAIT, lambda: f"{count} effects; have {len({e.seq for e in self.effects()})}", interval=0.5)

    def row(self, scenario: str, sent: int, note: str = "") -> Row:
        per_seq = Counter(e.seq for e in self.effects())
        handled = len(per_seq)
        return Row(scenario, sent, handled, sent - handled, sum(1 for c in per_seq.values() if c > 1), note)

    def stop_members(self, timeout: float = 60) -> dict[str, int | None]:
        """SIGTERM every consumer and wait up to ``timeout`` s for each; exit status, None for one still running."""
        for p in self.members.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout
        for member, p in self.members.items():
            try:
                codes[member] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGUSR1)  # its threads' stacks go to its stderr, in the test's output
                time.sleep(1)
                codes[member] = None
        return codes

    def close(self) -> None:
        for p in self.members.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.members.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.emitter is not None and self.emitter.poll() is None:
            self.emitter.kill()
            self.emitter.communicate()
