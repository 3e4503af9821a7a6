"""Handle events in a consumer group until SIGTERM. Usage: consume.py BUS_URL STATE_URL GROUP RECORD_FILE [batch]

Each message is applied through msg.unit_of_work(): an Applied document and the inbox record commit together.
With ``batch``, a batch handler applies up to 50 messages through one batch.unit_of_work() instead.
Every handler call that committed is appended to RECORD_FILE (message ids, one a line); RECORD_FILE.ready
appears once the listener has joined its group.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from pathlib import Path

from proc_model import Applied, Ticked, applied

import pubsubkit


def main(bus_url: str, state_url: str, group: str, record: str, mode: str = "one") -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a test that finds it wedged asks for its stacks
    store = pubsubkit.open_store(state_url)
    effects = applied(store)
    broker = pubsubkit.open_broker(bus_url)
    listener = broker.listener(group, store=store)
    lock = threading.Lock()
    pid = os.getpid()
    with open(record, "a", encoding="utf-8") as out:

        def apply(event: Ticked, msg: pubsubkit.Message) -> None:
            with msg.unit_of_work() as uow:
                uow.insert(effects, Applied(pubsubkit.new_id(), msg.id, group, event.seq, pid))
            with lock:
                out.write(msg.id + "\n")
                out.flush()

        def apply_batch(events: list[Ticked], batch: pubsubkit.Batch) -> None:
            with batch.unit_of_work() as uow:
                for event, msg in zip(events, batch.messages, strict=True):
                    uow.insert(effects, Applied(pubsubkit.new_id(), msg.id, group, event.seq, pid))
            with lock:
                out.write("".join(i + "\n" for i in batch.ids))
                out.flush()

        if mode == "batch":
            listener.add_batch_handler([Ticked], apply_batch, max_size=50, max_wait=0.1)
        else:
            listener.add_handler(Ticked, apply)

        def announce() -> None:
            if listener.wait_ready(120):
                Path(record + ".ready").touch()

        threading.Thread(target=announce, daemon=True).start()
        listener.run(handle_signals=True)
    broker.close()
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
