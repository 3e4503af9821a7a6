"""Reading a backend's options, from a URL's query or from keywords: one place for the checks and the messages.

Backends call these so that every option error reads the same way and names the option, the value and the fix::

    >>> flag("kafka", "compress", "yes")
    True
    >>> number("sqs", "wait", "25", int, 0, 20)
    Traceback (most recent call last):
    ...
    pubsubkit.errors.ConfigError: sqs option wait='25': must be between 0 and 20
"""

from __future__ import annotations

from typing import Any, TypeVar

from pubsubkit.errors import ConfigError

__all__ = ["FALSE", "TRUE", "flag", "number"]

#: The spellings of a true and of a false option value (compared in lower case).
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})

N = TypeVar("N", int, float)


def flag(backend: str, name: str, value: Any) -> bool:
    """``value`` as a boolean: a bool, or one of :data:`TRUE` / :data:`FALSE`; otherwise a ConfigError."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigError(f"{backend} option {name}={value!r}: use true or false")


def number(
    backend: str,
    name: str,
    value: Any,
    kind: type[N],
    minimum: float | None = None,
    maximum: float | None = None,
) -> N:
    """``value`` as an ``int`` or ``float`` within ``[minimum, maximum]``; otherwise a ConfigError saying why."""
    try:
        got = kind(value)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{backend} option {name}={value!r}: not {what}") from None
    low = minimum is None or got >= minimum
    high = maximum is None or got <= maximum
    if not (low and high):
        if minimum is not None and maximum is not None:
            bound = f"between {minimum:g} and {maximum:g}"
        elif minimum is not None:
            bound = f"at least {minimum:g}"
        else:
            bound = f"at most {maximum:g}"
        raise ConfigError(f"{backend} option {name}={value!r}: must be {bound}")
    return got
