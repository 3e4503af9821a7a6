"""Fixtures of the tests of myevents beside the original Go services (``tox -e rabbitmq``, ``kafka``, ``sqs``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "myevents"), str(HERE.parent / "procs")]
