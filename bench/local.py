"""What needs no server: the codec per 1 KiB event, and the embedded SQLite bus in one and in two processes."""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

import pubsubkit
from bench.brokers import Counter, pubsubkit_emit, pubsubkit_roundtrip
from bench.common import Row, Target, Ticket, find, guarded, progress, rate_row, run_name, sqlite_url, ticket

CODEC_TARGET_US = 10.0


def codec(n: int) -> tuple[list[Row], list[Target]]:
    """Microseconds per 1 KiB event to encode and decode: the best of 5 runs (the least disturbed by other
    processes on a shared machine), the median in the JSON."""
    progress(f"codec: {n} events x 5 repeats each way")
    c = pubsubkit.Codec()
    ev = ticket(1)
    env = c.envelope(ev, key="k1")
    assert c.decode(env) == ev
    assert 1000 <= len(env.payload) <= 1100, len(env.payload)
    cases = {
        "encode (event -> envelope)": lambda: c.envelope(ev, key="k1"),
        "encode payload only": lambda: c.encode(ev),
        "decode (envelope -> event)": lambda: c.decode(env),
    }
    rows: list[Row] = []
    for case, fn in cases.items():
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter() - start) / n * 1e6)
        us = min(runs)
        extra = {"runs_us": runs, "median_us": statistics.median(runs)}
        rows.append(Row("codec", "-", "pubsubkit", case, us, "us", n, sum(runs) * n / 1e6, extra=extra))
        progress(f"  {case:28} {us:6.2f} us (median {statistics.median(runs):.2f})")
    enc, dec = rows[1].value, rows[2].value
    targets = [
        Target("codec encode per 1 KiB event (us)", enc, CODEC_TARGET_US, 1.0, "<="),
        Target("codec decode per 1 KiB event (us)", dec, CODEC_TARGET_US, 1.0, "<="),
    ]
    return rows, targets


def _consumer(url: str, group: str, n: int, timeout: float, pipe: Connection) -> None:
    """The consuming process: joins, says so, counts ``n`` events, sends back wall-clock first and last."""
    broker = pubsubkit.open_broker(url)
    counter = Counter(n)
    counter.gate.set()
    listener = broker.listener(group, poll_interval=0.05)
    listener.add_handler(Ticket, counter)
    listener.start()
    listener.wait_ready(timeout)
    pipe.send("ready")
    counter.done.wait(timeout)
    # perf_counter is per process; pass the wall clock of the first and last message instead.
    offset = time.time() - time.perf_counter()
    pipe.send((counter.count, counter.first + offset, counter.last + offset))
    listener.close()
    broker.close()


def sqlite_two_processes(path: Path, n: int, timeout: float) -> list[Row]:
    """One process emits while another consumes the same SQLite bus file."""
    url = sqlite_url(path)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_consumer, args=(url, run_name("group"), n, timeout, theirs), daemon=True)
    proc.start()
    try:
        if not ours.poll(timeout) or ours.recv() != "ready":
            raise TimeoutError("the consuming process did not start")
        broker = pubsubkit.open_broker(url)
        start = time.time()
        seconds = pubsubkit_emit(broker, n)
        broker.close()
        if not ours.poll(timeout):
            raise TimeoutError("the consuming process did not finish")
        count, first, last = ours.recv()
    finally:
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
    return [
        rate_row("sqlite", "sqlite", "pubsubkit", "2 processes: emit while consumed", n, seconds),
        rate_row("sqlite", "sqlite", "pubsubkit", "2 processes: consume ack-after", count - 1, last - first),
        rate_row("sqlite", "sqlite", "pubsubkit", "2 processes: emit to handled", count, last - start),
    ]


def sqlite_raw(path: Path, n: int, batch: int = 100) -> list[Row]:
    """A raw ``sqlite3`` loop on the same rows with the same durability as pubsubkit's SQLite bus: WAL,
    ``synchronous=NORMAL``, the message row of the log (id, name, key, time, headers, payload) inserted in
    transactions of ``batch``; then read back in order ``batch`` at a time, each read's rows handled (decoded
    into the event) and the group's offset moved past them in one transaction."""
    import sqlite3

    from bench.handwritten import from_wire, now_text, to_wire

    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.executescript(
        "CREATE TABLE log(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, name TEXT NOT NULL, key TEXT,"
        " occurred_at TEXT NOT NULL, headers BLOB NOT NULL, payload BLOB NOT NULL);"
        "CREATE TABLE offsets(grp TEXT PRIMARY KEY, committed INTEGER NOT NULL);"
        "INSERT INTO offsets VALUES ('g', 0);"
    )
    events = [ticket(i) for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, batch):
        rows = [
            (str(uuid.uuid4()), "benchTicket", f"k{j % 100}", now_text(), b"{}", to_wire(events[j]))
            for j in range(i, min(n, i + batch))
        ]
        c.execute("BEGIN IMMEDIATE")
        c.executemany("INSERT INTO log(id, name, key, occurred_at, headers, payload) VALUES (?,?,?,?,?,?)", rows)
        c.execute("COMMIT")
    emit_s = time.perf_counter() - start
    got = 0
    start = time.perf_counter()
    while got < n:
        (committed,) = c.execute("SELECT committed FROM offsets WHERE grp = 'g'").fetchone()
        read = c.execute("SELECT seq, payload FROM log WHERE seq > ? ORDER BY seq LIMIT ?", (committed, batch))
        rows = read.fetchall()
        for _, data in rows:
            from_wire(data)
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE offsets SET committed = ? WHERE grp = 'g'", (rows[-1][0],))
        c.execute("COMMIT")
        got += len(rows)
    consume_s = time.perf_counter() - start
    c.close()
    return [
        rate_row("sqlite", "sqlite", "raw", f"sqlite3 insert, commit per {batch}", n, emit_s),
        rate_row("sqlite", "sqlite", "raw", f"sqlite3 read + decode, commit offset per {batch}", n, consume_s),
    ]


def sqlite(n: int, timeout: float) -> tuple[list[Row], list[Target]]:
    """The embedded bus: emit then consume in one process, then producer and consumer in two processes."""
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
        progress(f"sqlite: one process, {n} events")
        rows = guarded(
            "sqlite",
            "sqlite",
            "pubsubkit",
            "1 process",
            lambda: pubsubkit_roundtrip("sqlite", sqlite_url(Path(tmp) / "one.db"), n, timeout),
        )
        progress(f"sqlite: two processes, {n} events")
        rows += guarded(
            "sqlite",
            "sqlite",
            "pubsubkit",
            "2 processes",
            lambda: sqlite_two_processes(Path(tmp) / "two.db", n, timeout),
        )
        progress(f"sqlite: raw sqlite3 loop, {n} rows")
        rows += guarded("sqlite", "sqlite", "raw", "loop", lambda: sqlite_raw(Path(tmp) / "raw.db", n))
    for r in rows:
        r.scenario = "sqlite"
    return rows, sqlite_targets(rows)


def sqlite_targets(rows: list[Row]) -> list[Target]:
    """Emit and consume at least 0.5x the raw sqlite3 loop, in one process."""
    raw_emit = find(rows, "sqlite", "raw", "sqlite3 insert, commit per 100")
    raw_consume = find(rows, "sqlite", "raw", "sqlite3 read + decode, commit offset per 100")
    return [
        Target(
            "sqlite: emit vs raw sqlite3 loop",
            find(rows, "sqlite", "pubsubkit", "emit batch 100 confirmed"),
            raw_emit,
            0.5,
        ),
        Target(
            "sqlite: consume vs raw sqlite3 loop",
            find(rows, "sqlite", "pubsubkit", "consume ack-after"),
            raw_consume,
            0.5,
        ),
        Target(
            "sqlite: batch handler consume vs raw sqlite3 loop",
            find(rows, "sqlite", "pubsubkit", "consume batch handler 500"),
            raw_consume,
            0.5,
        ),
    ]
