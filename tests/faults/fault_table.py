"""A row of the fault suite's table."""

from __future__ import annotations

import attrs


@attrs.define
class Row:
    scenario: str
    sent: int | None = None
    handled: int | None = None
    lost: int | None = None
    twice: int | None = None
    note: str = ""
