"""The fault suite's pause scenarios: a server stopped (SIGSTOP) mid-stream, then continued (SIGCONT).

To its clients a paused server is a hung server or a stalled network, unlike a crash: connections stay open,
the kernel still takes what they send, and nothing answers. ``scripts/servers pause`` stops the server's whole
process group; ``resume`` lets it go on after ``PUBSUBKIT_FAULT_PAUSE`` seconds (default 20). Afterwards every
emitted event must be applied once, and every process must finish by itself: the emitter ends its stream, and
the consumers leave on SIGTERM within their drain timeout.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from backend_urls import SERVER, servers, store_url
from fault_stream import BROKER, COUNT, RATE, STORE, Stream, not_applicable
from fault_table import Row

from pubsubkit.testing import unique_name

pytestmark = pytest.mark.faults

PAUSE = float(os.environ.get("PUBSUBKIT_FAULT_PAUSE", "20"))
#: How long a consumer may take to leave after SIGTERM: its listener's drain (30 s) and closing.
STOP_WITHIN = 60.0
#: The store scenario's stream is a tenth of the brokers': a transaction per message on the MongoDB-wire test
#: server keeps two consumers at some tens of messages a second, and the backlog of the pause must drain soon.
STORE_SHARE = 10


def paused_mid_stream(stream: Stream, server: str, scenario: str, share: int = 1) -> Row:
    """Two consumers and the stream (COUNT / ``share`` events); ``server`` paused at a third of it for PAUSE s."""
    stream.consumer("c1")
    stream.consumer("c2")
    count, rate = COUNT // share, RATE / share
    stream.emit(count, rate)
    planned = count / rate
    time.sleep(planned / 3)
    servers("pause", server)
    try:
        time.sleep(PAUSE)
    finally:
        servers("resume", server)
    result = stream.emitted()  # the emitter finishes by itself (bounded by the stream's WAIT)
    assert result["error"] is None, result
    stream.wait_applied(result["emitted"])
    codes = stream.stop_members(STOP_WITHIN)
    assert codes == dict.fromkeys(stream.members, 0), f"consumers wedged (None) or failed on SIGTERM: {codes}"
    note = (
        f"{server} paused {PAUSE:g} s at a third; stream of {planned:.0f} s took {result['seconds']:.0f} s;"
        " consumers left on SIGTERM"
    )
    return stream.row(scenario, result["emitted"], note)


def test_the_broker_paused_mid_stream(stream: Stream, table: list[Row]) -> None:
    scenario = "broker paused 20 s mid-stream".replace(" 20 s", f" {PAUSE:g} s")
    if STORE:
        pytest.skip("run by the broker environments")
    if BROKER == "embedded":
        not_applicable(table, scenario, "embedded: no server to pause")
    row = paused_mid_stream(stream, SERVER[BROKER], scenario)
    table.append(row)
    assert (row.lost, row.twice) == (0, 0)


def test_the_store_paused_under_the_consumers(tmp_path: Path, table: list[Row]) -> None:
    """The consumers' inbox and effects (``msg.unit_of_work()``) are in the store under test while it is paused."""
    scenario = "store paused 20 s under the consumers".replace(" 20 s", f" {PAUSE:g} s")
    if not STORE:
        pytest.skip("run by the store environments (PUBSUBKIT_FAULT_STORE)")
    stream = Stream(tmp_path, state=store_url(STORE, unique_name("fault"), tmp_path))
    try:
        row = paused_mid_stream(stream, SERVER[STORE], scenario, share=STORE_SHARE)
    finally:
        stream.close()
    row.note = f"{STORE}: inbox and effects in it; " + row.note
    table.append(row)
    assert (row.lost, row.twice) == (0, 0)
