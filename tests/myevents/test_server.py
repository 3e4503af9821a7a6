"""The gunicorn worker's signal handling, in this process: Ctrl-C's signals arriving one inside the other; what the
gunicorn master loads, in a process of its own."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config as GunicornConfig  # type: ignore[import-untyped]
from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

from myevents.server import Worker

QUIT_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


class Pool:
    """A request thread pool whose shutdown holds a lock, as ThreadPoolExecutor's does, while the master's SIGQUIT
    arrives (right after the terminal's SIGINT that started the shutdown)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.shutdowns = 0
        self.reentered = False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if not self.lock.acquire(blocking=False):
            self.reentered = True  # ThreadPoolExecutor waits here forever: the lock is held by this very thread
            return
        try:
            self.shutdowns += 1
            signal.raise_signal(signal.SIGQUIT)
            signal.raise_signal(signal.SIGINT)
        finally:
            self.lock.release()


@pytest.fixture
def quit_handlers() -> Iterator[None]:
    """Whatever a test installs for SIGINT and SIGQUIT is undone afterwards."""
    previous = {s: signal.getsignal(s) for s in QUIT_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def make_worker(cls: Any) -> Any:
    return cls(1, os.getppid(), [], None, 30, GunicornConfig(), logging.getLogger("test.worker"))


def quit_with_ctrl_c(worker: Any) -> Pool:
    """The worker's quit handler installed as gunicorn does, then SIGINT: the pool it shut down."""
    pool = Pool()
    worker.tpool = pool
    for s in QUIT_SIGNALS:
        signal.signal(s, worker.handle_quit)
    try:
        with pytest.raises(SystemExit):
            signal.raise_signal(signal.SIGINT)
    finally:
        worker.tmp.close()
    return pool


@pytest.mark.usefixtures("quit_handlers")
def test_a_quit_signal_during_the_quit_is_ignored() -> None:
    pool = quit_with_ctrl_c(make_worker(Worker))
    assert (pool.shutdowns, pool.reentered) == (1, False)
    assert all(signal.getsignal(s) == signal.SIG_IGN for s in QUIT_SIGNALS)


@pytest.mark.usefixtures("quit_handlers")
def test_gunicorns_own_worker_reenters_its_quit_which_would_deadlock() -> None:
    """What the worker class is for: gunicorn's handler, interrupted by the second signal, runs again inside."""
    pool = quit_with_ctrl_c(make_worker(ThreadWorker))
    assert pool.reentered


@pytest.mark.usefixtures("quit_handlers")
def test_a_quit_signal_handled_inside_the_first_returns_at_once() -> None:
    """Even one handled before the first handler ignored the others: it neither exits nor shuts the pool down."""
    worker = make_worker(Worker)
    worker.tpool = pool = Pool()
    for s in QUIT_SIGNALS:
        signal.signal(s, worker.handle_quit)
    assert worker._quitting.acquire(blocking=False)  # the first handler is running
    try:
        worker.handle_quit(signal.SIGQUIT, None)
    finally:
        worker.tmp.close()
    assert pool.shutdowns == 0


#: What a master does before gunicorn forks its worker (``myevents event-service``): read the configuration, make
#: the token secret, check the backends, import the server. None of :data:`NOT_IN_MASTER` may be loaded then.
_MASTER = """
import json, sys
from myevents import cli, config, tokens
from myevents.server import ServiceApplication, check_backends
from pubsubkit import PubsubkitError

cfg = config.load("events", data_dir=sys.argv[1])
tokens.settings(cfg)
check_backends(cfg)
loaded = [m for m in sys.argv[2:] if m in sys.modules]
try:
    check_backends(config.load("events", data_dir=sys.argv[1], env={"MYEVENTS_STORE_URL": "carrier://pigeon"}))
except PubsubkitError as exc:
    error = [type(exc).__name__, str(exc)]
print(json.dumps({"loaded": loaded, "error": error}))
"""

NOT_IN_MASTER = (
    *("falcon", "jwt", "cattrs", "prometheus_client", "pubsubkit.api", "pubsubkit.backends.sqlite"),
    *("myevents.runtime", "myevents.events", "myevents.booking"),
    *("confluent_kafka", "pika", "boto3", "botocore", "pymongo"),
)


def test_the_master_checks_the_backends_without_loading_the_app_or_the_drivers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MASTER, str(tmp_path), *NOT_IN_MASTER], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert result["loaded"] == []
    assert (tmp_path / "bus.db").exists()  # the check did open the backends, in a child process
    kind, message = result["error"]
    assert kind == "UnknownSchemeError"
    assert message.startswith("no store plugin serves carrier://")
