"""The browser tests reuse the helpers of the myevents tests that start real processes."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "myevents"))
