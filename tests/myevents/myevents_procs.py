"""Running ``myevents`` processes in tests: start them with their output in files, call them, wait for them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from myevents_support import wait_for

ORIGINAL_VARIABLES = ("LISTEN_URL", "MONGO_URL", "AMQP_BROKER_URL", "KAFKA_BROKER_URLS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def myevents_command() -> list[str]:
    script = Path(sys.executable).with_name("myevents")
    return [str(script)] if script.exists() else [sys.executable, "-m", "myevents"]


def pubsubkit_command() -> list[str]:
    return [sys.executable, "-m", "pubsubkit"]


class Proc:
    """A ``myevents`` process (or another ``command``'s) with its output in files."""

    def __init__(
        self, tmp: Path, name: str, *args: str, env: dict[str, str] | None = None, command: list[str] | None = None
    ) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MYEVENTS_") and k not in ORIGINAL_VARIABLES}
        env = {**clean, **(env or {})}
        self.env = env
        self.out = tmp / f"{name}.out"
        self.err = tmp / f"{name}.err"
        with self.out.open("ab") as out, self.err.open("ab") as err:
            self.popen = subprocess.Popen(
                [*(command or myevents_command()), *args], stdout=out, stderr=err, env=env, start_new_session=True
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20, *, group: bool = False) -> int:
        """Signal the process (or, as Ctrl-C in a terminal does, its whole process group) and wait for it."""
        if group:
            os.killpg(self.popen.pid, sig)
        else:
            self.popen.send_signal(sig)
        return self.popen.wait(timeout)

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.err.read_text().splitlines() if line.startswith("{")]


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    ctx = ssl._create_unverified_context() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


def wait_ready(base: str, proc: Proc, path: str = "/ready") -> None:
    def ready() -> bool:
        assert proc.popen.poll() is None, proc.err.read_text()[-2000:]
        with contextlib.suppress(OSError):
            return call("GET", base + path)[0] == 200
        return False

    wait_for(ready, timeout=20, what=f"{base}{path}")
