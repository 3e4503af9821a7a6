"""Checks of the arguments of the application API, in the caller: each error names the argument and the fix.

>>> seconds("listener", "poll_interval", 0, positive=True)
Traceback (most recent call last):
...
pubsubkit.errors.ConfigError: listener option poll_interval=0: a number of seconds above 0
"""

from __future__ import annotations

from pubsubkit.errors import ConfigError

__all__ = ["seconds", "whole"]


def seconds(owner: str, name: str, value: object, *, positive: bool = False) -> float:
    """``value`` as seconds: a number, above 0 with ``positive``, else 0 or more."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "above 0" if positive else "0 or more"
        raise ConfigError(f"{owner} option {name}={value!r}: a number of seconds {bound}")
    return float(value)  # type: ignore[arg-type]


def whole(owner: str, name: str, value: object, least: int = 1) -> int:
    """``value`` as a whole number of at least ``least``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{owner} option {name}={value!r}: a whole number of at least {least}")
    return value
