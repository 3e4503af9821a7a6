"""The URL and the options of ``sqlite:///path/to/file.db``, and what the broker can do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.options import one_of, option, optional, read_options, real
from pubsubkit.transport import BrokerCapabilities

__all__ = ["CAPABILITIES", "SqliteOptions", "parse", "parse_url"]

CAPABILITIES = BrokerCapabilities(
    ordered=True,
    persistent=True,
    consumer_groups=True,
    replay=True,
    multi_process=True,
    dead_letter_store=True,
)


@attrs.frozen
class SqliteOptions:
    """What a ``sqlite://`` URL and the keyword options say.

    :ivar path: the database file, as the URL gives it (relative to the working directory unless absolute).
    :ivar lease: seconds a consumer holds a message before it is handed to another.
    :ivar poll: seconds between looks for messages published by other processes while the consumer is idle
        (while messages flow it looks every millisecond).
    :ivar synchronous: SQLite's ``synchronous`` pragma: ``NORMAL`` (a committed message survives a process crash)
        or ``FULL`` (also a power cut); ``OFF`` and ``EXTRA`` are accepted too.
    :ivar retention: seconds after which the broker deletes messages every group has settled (checked at most
        once a minute, after a publish); ``None``: the log is kept whole.
    """

    path: str
    lease: float = option(30.0, parse=real(0.0))
    poll: float = option(0.01, parse=real(0.0))
    synchronous: str = option(
        "NORMAL", parse=one_of("OFF", "NORMAL", "FULL", "EXTRA", case=str.upper, advice="NORMAL or FULL")
    )
    retention: float | None = option(None, parse=optional(real(0.0)))


def parse_url(url: str) -> tuple[str, str]:
    """``sqlite:///rel/path.db`` or ``sqlite:////abs/path.db`` -> (path, query string)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"{url!r}: not a sqlite URL")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        raise ConfigError(f"{url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db (three slashes)")
    if not path:
        raise ConfigError(f"{url!r}: no file path; e.g. sqlite:///data/myevents.db")
    if path == ":memory:":
        raise ConfigError("sqlite:///:memory: cannot be shared between connections; use memory:// instead")
    return path, parts.query


def parse(url: str, options: Mapping[str, Any]) -> SqliteOptions:
    """The options of ``url`` merged with keyword ``options`` (a keyword wins); an unknown one is a ConfigError."""
    path, query = parse_url(url)
    return read_options("sqlite", SqliteOptions, query, options, fields={"path": path})
