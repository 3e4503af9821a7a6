"""A listener process for the graceful-shutdown case: ``python -m pubsubkit.testing._shutdown_child``.

Arguments: broker URL, consumer group, event name, record file, seconds each handler takes. It handles the
event name until SIGTERM, writing ``ready``, then ``start <id>`` and ``done <id>`` around each handler call,
and ``exit`` once the listener has drained and the broker is closed.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from pubsubkit.api import open_broker
from pubsubkit.listener import Message


def main(argv: list[str]) -> int:
    url, group, name, path, seconds = argv
    delay = float(seconds)
    lock = threading.Lock()
    with open(path, "a", buffering=1, encoding="utf-8") as out:

        def write(line: str) -> None:
            with lock:
                out.write(line + "\n")
                out.flush()

        def handle(event: Any, msg: Message) -> None:
            write(f"start {msg.id}")
            time.sleep(delay)
            write(f"done {msg.id}")

        broker = open_broker(url)
        listener = broker.listener(group, concurrency=4, max_in_flight=8, poll_interval=0.05, drain_timeout=30.0)
        listener.add_handler(name, handle)

        def announce() -> None:
            if listener.wait_ready(60):
                write("ready")

        threading.Thread(target=announce, daemon=True).start()
        listener.run(handle_signals=True)
        broker.close()
        write("exit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
