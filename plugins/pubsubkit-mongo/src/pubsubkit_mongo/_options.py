"""The URL and options of ``mongodb://`` stores: pymongo's connection string, plus a few options of pubsubkit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.options import build_options, option, option_names, split_options
from pubsubkit.plugin import redact

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_INBOX_TTL",
    "DEFAULT_SERVER_SELECTION_TIMEOUT_MS",
    "DEFAULT_SOCKET_TIMEOUT_MS",
    "DEFAULT_TRANSACTION_TIMEOUT",
    "MAX_TTL",
    "SCHEMES",
    "MongoOptions",
    "parse",
]

SCHEMES = ("mongodb", "mongodb+srv")
DEFAULT_DATABASE = "pubsubkit"
DEFAULT_INBOX_TTL = 30 * 24 * 3600  # seconds: 30 days
DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000  # unless the URL or a keyword sets serverSelectionTimeoutMS
#: pymongo's socketTimeoutMS unless the URL or a keyword sets it or timeoutMS: without it, an operation on a server
#: that stopped answering (hung, or the network stalled) waits as long as the socket stays open. Not timeoutMS:
#: that one also replaces serverSelectionTimeoutMS, and an unreachable server would be waited for 30 s, not 5.
DEFAULT_SOCKET_TIMEOUT_MS = 30_000
DEFAULT_TRANSACTION_TIMEOUT = 30.0  # seconds a unit of work may take, retries after write conflicts included
MAX_TTL = 2_147_483_647  # MongoDB's limit of expireAfterSeconds

_DB_NAME = re.compile(r'^[^/\\. "$*<>:|?\0]{1,63}$')


def _seconds(backend: str, name: str, value: Any) -> int:
    try:
        seconds = int(float(value))
    except (TypeError, ValueError):
        raise ConfigError(f"{backend} option {name}={value!r}: expected a number of seconds") from None
    if not 1 <= seconds <= MAX_TTL:
        raise ConfigError(f"{backend} option {name}={value!r}: must be between 1 and {MAX_TTL} seconds")
    return seconds


def _timeout(backend: str, name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds < 86_400:
        raise ConfigError(f"{backend} option {name}={value!r}: expected seconds above 0")
    return seconds


def _database(backend: str, name: str, value: Any) -> str:
    database = str(value)
    if not _DB_NAME.match(database):
        raise ConfigError(
            f'mongodb database name {database!r}: 1 to 63 characters, none of / \\ . space " $ * < > : | ?'
        )
    return database


@attrs.frozen
class MongoOptions:
    """What :func:`parse` makes of a URL and keyword options.

    :ivar client_url: the URL handed to pymongo (pubsubkit's own options removed from its query).
    :ivar client_options: keyword options for ``pymongo.MongoClient`` (the keywords that are not pubsubkit's).
    :ivar database: the database holding the store's collections (default: the URL's path, else pubsubkit).
    :ivar inbox_ttl: seconds after which MongoDB's TTL monitor removes an inbox record.
    :ivar transaction_timeout: seconds a unit of work may take, its retries after write conflicts included.
    """

    client_url: str
    client_options: Mapping[str, Any]
    database: str = option(DEFAULT_DATABASE, parse=_database)
    inbox_ttl: int = option(DEFAULT_INBOX_TTL, parse=_seconds)
    transaction_timeout: float = option(DEFAULT_TRANSACTION_TIMEOUT, parse=_timeout)


#: Options of this backend, read from keyword arguments or the URL query (and removed from what pymongo sees).
OWN_OPTIONS = option_names(MongoOptions)


def parse(url: str, options: Mapping[str, Any]) -> MongoOptions:
    """Split ``url`` and ``options`` into pymongo's connection string and options, and this backend's own.

    Every name that is not one of :data:`OWN_OPTIONS` is pymongo's, which refuses the ones it does not know.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"{redact(url)!r}: not a valid URL: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigError(f"{redact(url)!r}: not a mongodb:// or mongodb+srv:// URL")
    if not parts.netloc:
        raise ConfigError(f"{redact(url)!r}: no host; e.g. mongodb://127.0.0.1:27017/myapp")
    split = split_options("mongodb", OWN_OPTIONS, parts.query, options, passthrough=lambda name: True)
    ours = dict(split.ours)
    ours["database"] = ours.get("database") or parts.path.lstrip("/") or DEFAULT_DATABASE  # checked too
    client_url = urlunsplit(parts._replace(query=urlencode(split.query_rest, safe=",:/")))
    client_options = dict(split.keyword_rest)
    given = {k.lower() for k, _ in split.query_rest} | {k.lower() for k in client_options}
    if "serverselectiontimeoutms" not in given:
        # pymongo waits 30 s for an unreachable server; a request handler should fail sooner.
        client_options["serverSelectionTimeoutMS"] = DEFAULT_SERVER_SELECTION_TIMEOUT_MS
    if not given & {"timeoutms", "sockettimeoutms"}:
        client_options["socketTimeoutMS"] = DEFAULT_SOCKET_TIMEOUT_MS
    fields = {"client_url": client_url, "client_options": client_options}
    return build_options("mongodb", MongoOptions, ours, fields)
