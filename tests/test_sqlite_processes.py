"""Several processes on one SQLite file: one emits, two share a consumer group, a third is another group.

Each message must have exactly one effect per group (an Applied document written with the inbox record in one
unit of work), whichever member handled it. Throughput is printed, never asserted.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import pubsubkit
from pubsubkit.testing import wait_until

PROCS = Path(__file__).parent / "procs"
COUNT = 10_000
TIMEOUT = 600.0

sys.path.insert(0, str(PROCS))
from proc_model import applied  # noqa: E402


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_two_groups_across_processes_have_one_effect_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bus, state = f"sqlite:///{tmp_path}/bus.db", f"sqlite:///{tmp_path}/state.db"
    # Create the schemas and the collection before the processes start at once.
    pubsubkit.open_broker(bus).close()
    setup = pubsubkit.open_store(state)
    applied(setup)
    setup.close()

    members = {"a1": "group_a", "a2": "group_a", "b1": "group_b"}
    records = {m: tmp_path / f"{m}.ids" for m in members}
    consumers = {
        m: subprocess.Popen([sys.executable, str(PROCS / "consume.py"), bus, state, g, str(records[m])])
        for m, g in members.items()
    }
    try:
        wait_until(
            lambda: all(Path(f"{r}.ready").exists() for r in records.values()),
            120,
            "every consumer process to join its group",
        )
        start = time.monotonic()
        emitter = subprocess.run(
            [sys.executable, str(PROCS / "emit.py"), bus, str(COUNT)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        emitted = json.loads(emitter.stdout)
        done_at: dict[str, float] = {}

        def group_done(group: str, ms: list[str]) -> bool:
            if group not in done_at and len({i for m in ms for i in lines(records[m])}) >= COUNT:
                done_at[group] = time.monotonic() - start
            return group in done_at

        def both_done() -> bool:
            a = group_done("group_a", ["a1", "a2"])
            b = group_done("group_b", ["b1"])
            return a and b

        wait_until(
            both_done,
            TIMEOUT,
            lambda: f"both groups to handle {COUNT} messages; handled {[len(lines(r)) for r in records.values()]}",
            interval=0.2,
        )
        for p in consumers.values():
            p.send_signal(signal.SIGTERM)
        for m, p in consumers.items():
            assert p.wait(120) == 0, f"consumer {m} did not shut down cleanly"
    finally:
        for p in consumers.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    store = pubsubkit.open_store(state)
    try:
        effects = applied(store)
        for group, ms in (("group_a", ["a1", "a2"]), ("group_b", ["b1"])):
            docs = effects.find(group=group)
            per_message = Counter(d.message_id for d in docs)
            twice = [i for i, c in per_message.items() if c > 1]
            assert not twice, f"{group}: {len(twice)} messages applied more than once"
            assert sorted(d.seq for d in docs) == list(range(COUNT)), f"{group}: not every message applied once"
            calls = [i for m in ms for i in lines(records[m])]
            assert set(calls) == set(per_message), f"{group}: handler calls and effects differ"
            assert all(store.inbox_contains(group, i) for i in per_message)
        a1, a2 = len(lines(records["a1"])), len(lines(records["a2"]))
        assert a1 > 0, "member a1 of group_a handled nothing"
        assert a2 > 0, "member a2 of group_a handled nothing"
    finally:
        store.close()

    with capsys.disabled():
        print(
            f"\n  sqlite, {COUNT} events across processes: emit {COUNT / emitted['seconds']:,.0f}/s "
            f"({emitted['seconds']:.1f}s, one confirmed publish each); "
            f"group_a (2 processes, split {a1}/{a2}) all applied after {done_at['group_a']:.1f}s "
            f"= {COUNT / done_at['group_a']:,.0f}/s; "
            f"group_b (1 process) after {done_at['group_b']:.1f}s = {COUNT / done_at['group_b']:,.0f}/s"
        )
