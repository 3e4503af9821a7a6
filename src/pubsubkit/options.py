"""Reading a backend's options, from a URL's query or from keywords: one place for the checks and the messages.

A backend declares its options as a frozen attrs record whose option fields are made with :func:`option`, and
reads a URL's query and the keyword arguments of ``open_broker`` / ``open_store`` into it with
:func:`read_options` (a keyword wins over the query). A name that is neither an option of the record nor, where
the backend allows it, a pass-through option of its driver raises :class:`~pubsubkit.errors.ConfigError` naming it
and the valid ones::

    >>> import attrs
    >>> @attrs.frozen
    ... class DemoOptions:
    ...     lease: float = option(30.0, parse=real(0.001))
    ...     fast: bool = option(False, parse=boolean)
    >>> read_options("demo", DemoOptions, "lease=5", {"fast": "yes"})
    DemoOptions(lease=5.0, fast=True)
    >>> read_options("demo", DemoOptions, "leese=5", {})
    Traceback (most recent call last):
    ...
    pubsubkit.errors.ConfigError: unknown demo option 'leese': use one of fast, lease

A backend whose driver takes options of its own splits first (:func:`split_options`, with a ``passthrough`` test
of the driver's names), hands :attr:`Split.rest` to the driver and builds its record from :attr:`Split.ours`
(:func:`build_options`). The value checks below are also usable one by one, so that every option error reads the
same way and names the option, the value and the fix::

    >>> flag("kafka", "compress", "yes")
    True
    >>> number("sqs", "wait", "25", int, 0, 20)
    Traceback (most recent call last):
    ...
    pubsubkit.errors.ConfigError: sqs option wait='25': must be between 0 and 20
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

import attrs

from pubsubkit.errors import ConfigError

__all__ = [
    "FALSE",
    "TRUE",
    "Parse",
    "Split",
    "boolean",
    "build_options",
    "flag",
    "number",
    "one_of",
    "option",
    "option_names",
    "optional",
    "read_options",
    "real",
    "split_options",
    "text",
    "whole",
]

#: The spellings of a true and of a false option value (compared in lower case).
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})

N = TypeVar("N", int, float)
R = TypeVar("R")

#: A value check: ``(backend, name, value)`` -> the value converted, or a ConfigError saying what is wrong.
Parse = Callable[[str, str, Any], Any]

#: The key of an option field's check in its attrs metadata.
OPTION = "pubsubkit.option"


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


# --- checks of one value --------------------------------------------------------------------------------------


def text(backend: str, name: str, value: Any) -> str:
    """``value`` as a string."""
    return str(value)


def boolean(backend: str, name: str, value: Any) -> bool:
    """``value`` as a boolean (:func:`flag`)."""
    return flag(backend, name, value)


def whole(minimum: int | None = None, maximum: int | None = None) -> Parse:
    """A check of a whole number within ``[minimum, maximum]``."""

    def parse(backend: str, name: str, value: Any) -> int:
        return number(backend, name, value, int, minimum, maximum)

    return parse


def real(minimum: float | None = None, maximum: float | None = None) -> Parse:
    """A check of a number within ``[minimum, maximum]``."""

    def parse(backend: str, name: str, value: Any) -> float:
        return number(backend, name, value, float, minimum, maximum)

    return parse


def one_of(*choices: str, case: Callable[[str], str] = str.lower, advice: str = "") -> Parse:
    """A check of one of ``choices`` (compared after ``case``); ``advice`` replaces "use a or b" in the message."""
    said = advice or (", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0])

    def parse(backend: str, name: str, value: Any) -> str:
        got = case(str(value).strip())
        if got not in choices:
            raise ConfigError(f"{backend} option {name}={got!r}: use {said}")
        return got

    return parse


def optional(parse: Parse) -> Parse:
    """``parse``, except that ``None`` and the empty string mean no value (``None``)."""

    def check(backend: str, name: str, value: Any) -> Any:
        return None if value is None or value == "" else parse(backend, name, value)

    return check


# --- records of options ---------------------------------------------------------------------------------------


def option(default: Any, *, parse: Parse = text) -> Any:
    """A field of an options record: its default, and the check a given value goes through (default: a string).

    The default itself is taken as it is. Fields made with plain ``attrs.field`` are not options: the backend
    fills them from the rest of its URL (a host, a path) when it builds the record.
    """
    return attrs.field(default=default, metadata={OPTION: parse})


def option_names(record: type) -> tuple[str, ...]:
    """The names of the option fields of ``record``, sorted."""
    return tuple(sorted(f.name for f in attrs.fields(cast(Any, record)) if OPTION in f.metadata))


@attrs.frozen
class Split:
    """Options sorted into the backend's own and its driver's.

    :ivar ours: the backend's own options by name, from the query and the keywords (a keyword wins).
    :ivar query_rest: the driver's options found in the query, in their order (to rebuild a driver's URL).
    :ivar keyword_rest: the driver's options given as keywords.
    """

    ours: dict[str, Any]
    query_rest: list[tuple[str, str]]
    keyword_rest: dict[str, Any]

    @property
    def rest(self) -> dict[str, Any]:
        """Every option of the driver, query and keywords together (a keyword wins)."""
        return {**dict(self.query_rest), **self.keyword_rest}


def _unknown(backend: str, names: list[str], valid: Collection[str], driver: str) -> ConfigError:
    what = "option" if len(names) == 1 else "options"
    listed = ", ".join(repr(n) for n in names)
    fix = f"use one of {', '.join(sorted(valid))}" if valid else f"{backend} takes no options"
    if driver:
        fix += f", or {driver}"
    return ConfigError(f"unknown {backend} {what} {listed}: {fix}")


def split_options(
    backend: str,
    names: Collection[str],
    query: str,
    keywords: Mapping[str, Any],
    *,
    passthrough: Callable[[str], bool] | None = None,
    keyword_passthrough: bool = True,
    driver: str = "",
) -> Split:
    """Sort the ``query`` (a URL's query string) and ``keywords`` into ``names`` and the driver's options.

    A name that is not in ``names`` belongs to the driver when ``passthrough`` says so (for a keyword, only with
    ``keyword_passthrough``); any other raises ConfigError naming every such name, the valid ones and, as
    ``driver`` says, what else may be given (e.g. ``"a librdkafka property (a.b)"``).
    """
    ours: dict[str, Any] = {}
    query_rest: list[tuple[str, str]] = []
    keyword_rest: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in names:
            ours[key] = value
        elif passthrough is not None and passthrough(key):
            query_rest.append((key, value))
        else:
            unknown.append(key)
    for key, value in keywords.items():
        if key in names:
            ours[key] = value
        elif passthrough is not None and keyword_passthrough and passthrough(key):
            keyword_rest[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise _unknown(backend, sorted(set(unknown)), names, driver)
    return Split(ours, query_rest, keyword_rest)


def build_options(backend: str, record: type[R], ours: Mapping[str, Any], fields: Mapping[str, Any] | None = None) -> R:
    """``record`` with the options ``ours`` checked by their fields' checks, and the other ``fields`` as given."""
    values: dict[str, Any] = dict(fields or {})
    for f in attrs.fields(cast(Any, record)):
        parse = f.metadata.get(OPTION)
        if parse is not None and f.name in ours:
            values[f.name] = parse(backend, f.name, ours[f.name])
    return record(**values)


def read_options(
    backend: str,
    record: type[R],
    query: str,
    keywords: Mapping[str, Any],
    *,
    fields: Mapping[str, Any] | None = None,
) -> R:
    """The options of a backend without pass-through options: :func:`split_options` then :func:`build_options`."""
    split = split_options(backend, option_names(record), query, keywords)
    return build_options(backend, record, split.ours, fields)
