"""Running services under gunicorn: one service per gunicorn master, and ``serve`` supervising two of them.

The service (backends, relay and listener threads) is built in ``load()``, which gunicorn calls in each worker
after the fork (``preload_app`` stays off): the master holds no thread and no connection. Nor does it import the
application, pubsubkit's runtime or a backend's driver (``check_backends`` opens the backends in a child of its
own): whatever the master holds, each worker inherits, and both count it in their resident sets. ``worker_exit``
closes the service in the worker, so SIGTERM or Ctrl-C lets the listener drain and the relay stop before it exits.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from myevents import logs, tracing
from myevents.config import Config
from myevents.edge import BufferingWorker, close_unread, install_problem_pages
from myevents.shutdown import draining
from pubsubkit import errors
from pubsubkit.errors import PubsubkitError

if TYPE_CHECKING:
    from myevents.runtime import Service

__all__ = ["ServiceApplication", "Worker", "check_backends", "supervise"]

log = logging.getLogger("myevents.server")

#: The module whose ``create_service(config)`` builds each service, imported by the worker that serves it.
FACTORIES: dict[str, str] = {
    "events": "myevents.events",
    "booking": "myevents.booking",
}

# Seconds a worker has to finish its requests and close its service (at most runtime.CLOSE_SECONDS) after SIGTERM,
# or to close its service after SIGINT / SIGQUIT, before its master kills it.
GRACEFUL_SECONDS = 30


def check_backends(config: Config) -> None:
    """Open and close the broker and the store once, so a wrong URL fails before any worker starts.

    The backends are opened in a child process forked for the check, which exits once it is done: opening them
    imports pubsubkit's runtime and the backends' drivers, which the master would otherwise keep for its whole
    life and pass on to every worker it forks. A :class:`~pubsubkit.PubsubkitError` of the child is raised here
    again (same class when it is one of :mod:`pubsubkit.errors`, same message); any other failure of the child
    raises :class:`RuntimeError` with the child's traceback. A process running other threads (not a master about
    to start) is not forked: the backends are opened in it.
    """
    if threading.active_count() > 1:
        _open_and_close(config)
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what went wrong on the pipe, never return to the caller
        os.close(read_end)
        code = 0
        try:
            _open_and_close(config)
        except PubsubkitError as exc:
            code = 1
            os.write(write_end, f"{type(exc).__name__}\n{exc}".encode())
        except BaseException:
            code = 2
            os.write(write_end, traceback.format_exc().encode())
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as report:
            text = report.read().decode(errors="replace")
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except BaseException:  # e.g. Ctrl-C while the check runs: do not leave the child behind
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    if code == 0:
        return
    if code == 1:
        name, _, message = text.partition("\n")
        cls = getattr(errors, name, None)
        if not (isinstance(cls, type) and issubclass(cls, PubsubkitError)):
            cls = PubsubkitError
        raise cls(message)
    raise RuntimeError(f"checking the backends failed (exit code {code}):\n{text}")


def _open_and_close(config: Config) -> None:
    from myevents.runtime import open_backends

    open_backends(config.broker_url, config.store_url).close()


# Once a worker closes its service, no signal may interrupt it: Ctrl-C reaches a worker several times (from the
# terminal, then from its master, which ``serve`` may have signalled too), and gunicorn answers SIGINT and SIGQUIT
# with sys.exit(), which would cut the listener's drain short.
_SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


class Worker(BufferingWorker):
    """gunicorn's threaded worker, reading requests before giving them a thread (:class:`BufferingWorker`), whose
    quick shutdown (SIGINT, SIGQUIT) runs once.

    Ctrl-C sends a worker SIGINT from the terminal and, at about the same time, SIGQUIT from its master.
    gunicorn's ``handle_quit`` is not reentrant: it shuts the request thread pool down, holding the pool's lock,
    before the ``worker_int`` hook runs; a second signal handled meanwhile (Python runs it in the same thread,
    inside the first handler) waits for that lock forever, and the master kills the worker after its graceful
    timeout without the service being closed. Here the first quit signal ignores the others before anything else.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._quitting = threading.Lock()
        install_problem_pages()  # gunicorn's own refusals as problem documents, like every other error

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: ``/ready`` turns false at once; the worker keeps serving for the shutdown delay, then drains."""
        if draining.is_set():
            return
        draining.set()
        delay = getattr(getattr(self.app, "config", None), "shutdown_delay", 0.0)
        if delay > 0:
            self.log.info("shutting down in %gs: /ready answers 503 meanwhile", delay)
            timer = threading.Timer(delay, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()
        else:
            super().handle_exit(sig, frame)

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        # A non-blocking acquire cannot be interrupted by a Python signal handler: exactly one call goes on.
        if not self._quitting.acquire(blocking=False):
            return
        for s in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(s, signal.SIG_IGN)
        super().handle_quit(sig, frame)


def _worker_exit(server: Any, worker: Any) -> None:
    """Close the worker's service (the master runs this hook too, with no service: it does nothing there)."""
    service: Service | None = getattr(server.app, "service", None)
    if service is not None:
        for sig in _SHUTDOWN_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        service.close()


class ServiceApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured from a :class:`Config`, serving the service it names."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.service: Service | None = None
        super().__init__(prog=f"myevents {config.service}")

    def load_config(self) -> None:
        c = self.config
        settings: dict[str, Any] = {
            "bind": [c.bind],
            "workers": c.workers,
            "worker_class": Worker,
            "threads": c.threads,
            "proc_name": f"myevents-{c.service}",
            "graceful_timeout": GRACEFUL_SECONDS,
            "logconfig_dict": logs.logconfig_dict(c.service, c.log_level),
            "loglevel": c.log_level,
            "accesslog": None,  # the app logs each request itself, as JSON with its correlation id
            "worker_exit": _worker_exit,
            "certfile": c.certfile,
            "keyfile": c.keyfile,
            # Two masters on one machine must not fight over one default control socket path.
            "control_socket_disable": True,
        }
        for key, value in settings.items():
            if value is not None and key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Any:
        tracing.setup(self.config.service)  # in the worker, before its app is made
        create: Callable[[Config], Service] = importlib.import_module(FACTORIES[self.config.service]).create_service
        self.service = create(self.config).start()
        return close_unread(self.service.app)


def supervise(commands: Sequence[Sequence[str]], stop_timeout: float = 2 * GRACEFUL_SECONDS + 15) -> int:
    """Run each command as a child process until a signal or a child's exit; then stop them all.

    SIGINT and SIGTERM are passed on to the children. Returns 0 when every child exited with 0.
    """
    procs = [subprocess.Popen(list(cmd)) for cmd in commands]
    stopping: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    deadline: float | None = None
    try:
        while any(p.poll() is None for p in procs):
            if not stopping and any(p.poll() is not None for p in procs):
                failed = True
                log.error("a service exited on its own; stopping the other")
                forward(signal.SIGTERM, None)
            if stopping and deadline is None:
                deadline = time.monotonic() + stop_timeout
            if deadline is not None and time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                failed = True
            time.sleep(0.1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    codes = [p.wait() for p in procs]
    return 1 if failed or any(codes) else 0


def child_command(args: Sequence[str]) -> list[str]:
    """The command line running ``myevents <args>`` with this interpreter."""
    return [sys.executable, "-m", "myevents", *args]
