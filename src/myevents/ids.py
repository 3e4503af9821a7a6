"""Entity ids the original Go services accept: 24 hex digits, laid out as a MongoDB ObjectId.

The original booking service refuses an event id that is not an ObjectId's hex form, so events, locations and
bookings get ids of that form: 4 bytes of Unix seconds (so they sort by creation time, to the second), 5 random
bytes drawn once per process (again after a fork), and a 3-byte counter that starts at a random value. Ids
stored before keep working: the services look ids up as strings and accept any id of letters, digits, ``_``
and ``-``. Message ids are pubsubkit's own (UUIDv7) and are not affected.

>>> len(object_id()), int(object_id(), 16) >= 0
(24, True)
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from typing import Final

__all__ = ["ID_CHARACTERS", "MAX_ID_LENGTH", "OBJECT_ID", "is_entity_id", "object_id"]

#: The form of an ObjectId's hex string.
OBJECT_ID: Final = re.compile(r"[0-9a-f]{24}")

#: What an entity id may be made of, and how long it may be: the ids made here and the ids a client chooses.
ID_CHARACTERS: Final = re.compile(r"[A-Za-z0-9_-]+")
MAX_ID_LENGTH: Final = 64


def is_entity_id(value: str) -> bool:
    """Whether ``value`` can be the id of an event, a location or a booking.

    >>> is_entity_id("656f1c2e9b1e8a0012345678"), is_entity_id("\ufffd(\ufffd+"), is_entity_id("")
    (True, False, False)
    """
    return len(value) <= MAX_ID_LENGTH and ID_CHARACTERS.fullmatch(value) is not None


_lock = threading.Lock()
_pid = -1
_process = b""
_counter = 0


def object_id() -> str:
    """A new id of 24 lower-case hex digits, unique across processes, ordered by its creation second."""
    global _pid, _process, _counter
    with _lock:
        pid = os.getpid()
        if pid != _pid:  # a new process, or a fork: its own random part and counter
            _pid, _process, _counter = pid, secrets.token_bytes(5), secrets.randbelow(1 << 24)
        _counter = (_counter + 1) & 0xFFFFFF
        counter = _counter
        process = _process
    seconds = int(time.time()) & 0xFFFFFFFF
    return (seconds.to_bytes(4, "big") + process + counter.to_bytes(3, "big")).hex()
