"""Whether this process is shutting down: set by the gunicorn worker on SIGTERM, read by the readiness probe.

A module of its own so that the gunicorn master, which imports the worker class, need not import the runtime.
"""

from __future__ import annotations

import threading

__all__ = ["draining"]

#: Set when the process begins its graceful shutdown (SIGTERM): ``/ready`` answers 503 from then on, while
#: requests are still served for the configured shutdown delay.
draining = threading.Event()
