"""Emit COUNT events, one confirmed publish each; print as JSON how many and how long.

Usage: emit.py BUS_URL COUNT [RATE]. With RATE (events per second) the stream is paced. Publishing retries
for EMIT_RETRY_FOR seconds (default 10) when the broker is unreachable; past that bound the script prints how
many events were emitted before the error and exits with status 1.
"""

from __future__ import annotations

import json
import os
import sys
import time

from proc_model import Ticked

import pubsubkit


def main(url: str, count: int, rate: float = 0.0) -> int:
    emitted, error = 0, None
    with pubsubkit.open_broker(url) as broker:
        emitter = broker.emitter(retry_for=float(os.environ.get("EMIT_RETRY_FOR", "10")))
        start = time.monotonic()
        try:
            for seq in range(count):
                if rate:
                    ahead = start + seq / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                emitter.emit(Ticked(seq), key=f"k{seq % 64}")
                emitted += 1
        except pubsubkit.PubsubkitError as exc:
            error = f"{type(exc).__name__}: {exc}"
        took = time.monotonic() - start
    print(json.dumps({"emitted": emitted, "seconds": took, "error": error}), flush=True)
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))
