"""Emit COUNT events, one confirmed publish each; print how long it took as JSON. Usage: emit.py BUS_URL COUNT"""

from __future__ import annotations

import json
import sys
import time

from proc_model import Ticked

import pubsubkit


def main(url: str, count: int) -> None:
    with pubsubkit.open_broker(url) as broker:
        emitter = broker.emitter()
        start = time.monotonic()
        for seq in range(count):
            emitter.emit(Ticked(seq), key=f"k{seq % 64}")
        took = time.monotonic() - start
    print(json.dumps({"emitted": count, "seconds": took}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
