"""Fixtures of the RabbitMQ backend's tests (the server's URL comes from plugins/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
