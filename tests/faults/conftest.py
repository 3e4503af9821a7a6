"""The fault suite's table: one row per scenario, printed at the end of the run.

Columns: scenario, events sent, handled (distinct), lost, applied twice, and a note (why a scenario does not
apply to this backend, or what was done to it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the processes' and the myevents tests' helpers, for the scenario modules (tests/procs, tests/myevents)
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / d) for d in ("procs", "myevents")]
from backend_urls import AWS  # noqa: E402
from fault_stream import Stream  # noqa: E402
from fault_table import Row  # noqa: E402

ROWS: list[Row] = []


@pytest.fixture
def table() -> list[Row]:
    """Append a :class:`Row` to report a scenario."""
    return ROWS


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in AWS.items():
        monkeypatch.setenv(k, os.environ.get(k, v))


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[Stream]:
    """An emitter and consumers on the broker under test, their state in SQLite (see :class:`Stream`)."""
    s = Stream(tmp_path)
    yield s
    s.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    broker = os.environ.get("PUBSUBKIT_FAULT_BROKER", "embedded")
    store = os.environ.get("PUBSUBKIT_FAULT_STORE", "embedded")
    size = os.environ.get("PUBSUBKIT_FAULT_SIZE", "quick")
    tr = terminalreporter
    tr.section(f"fault suite: broker {broker}, store {store}, size {size}")
    cells = [["scenario", "sent", "handled", "lost", "applied twice", "note"]]
    for r in ROWS:
        cells.append(
            [r.scenario, *("-" if v is None else str(v) for v in (r.sent, r.handled, r.lost, r.twice)), r.note]
        )
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    for row in cells:
        tr.write_line("  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5])
