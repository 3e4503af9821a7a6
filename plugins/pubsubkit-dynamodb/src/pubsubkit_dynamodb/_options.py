"""``dynamodb://?region=...&endpoint_url=...&prefix=...``: the URL, its options and the boto3 client."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.options import (
    boolean,
    build_options,
    number,
    option,
    option_names,
    optional,
    real,
    split_options,
    text,
)

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_COLLECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
_FIELD = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def _prefix(backend: str, name: str, value: Any) -> str:
    prefix = str(value)
    if not _PREFIX.match(prefix):
        raise ConfigError(f"{backend} option {name}={prefix!r}: use 1-100 letters, digits, _ and -")
    return prefix


def _attempts(backend: str, name: str, value: Any) -> int:
    return int(number(backend, name, value, float, 1))


@attrs.frozen
class Settings:
    """What a ``dynamodb://`` URL and the keyword options of ``open_store`` say."""

    region: str | None = option(None, parse=optional(text))
    endpoint_url: str | None = option(None, parse=optional(text))
    prefix: str = option("pubsubkit", parse=_prefix)
    inbox_ttl: float = option(14 * 24 * 3600.0, parse=real(0))
    create_tables: bool = option(True, parse=boolean)
    max_attempts: int = option(5, parse=_attempts)
    timeout: float = option(10.0, parse=real(0.1))

    @classmethod
    def parse(cls, url: str, options: Mapping[str, Any]) -> Settings:
        parts = urlsplit(url)
        if parts.scheme != "dynamodb":
            raise ConfigError(f"{url!r}: not a dynamodb URL")
        if parts.path.strip("/") or (parts.netloc and not _REGION.match(parts.netloc)):
            raise ConfigError(
                f"{url!r}: the host part, if any, is the region and options go in the query,"
                " e.g. dynamodb://us-east-1?prefix=myapp or dynamodb://?region=us-east-1&prefix=myapp"
            )
        split = split_options("dynamodb", option_names(cls), parts.query, options)
        opts = dict(split.ours)
        if parts.netloc:
            if opts.get("region", parts.netloc) != parts.netloc:
                raise ConfigError(f"{url!r}: two regions, {parts.netloc!r} and region={opts['region']!r}")
            opts["region"] = parts.netloc
        settings = build_options("dynamodb", cls, opts)
        endpoint = settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
        return attrs.evolve(settings, endpoint_url=endpoint)

    def table(self, collection: str) -> str:
        """The table of a collection: ``<prefix>.<collection>``."""
        if not _COLLECTION.match(collection):
            raise ConfigError(
                f"collection name {collection!r}: use up to 100 letters, digits and _ (starting with a letter)"
            )
        return f"{self.prefix}.{collection}"

    @property
    def outbox_table(self) -> str:
        return f"{self.prefix}-outbox"

    @property
    def inbox_table(self) -> str:
        return f"{self.prefix}-inbox"

    @property
    def meta_table(self) -> str:
        return f"{self.prefix}-meta"


def index_name(field: str) -> str:
    """The global secondary index of a field: ``<field>-index`` (the original MyEvents had ``EventName-index``)."""
    if not _FIELD.match(field) or field == "id":
        raise ConfigError(f"cannot index field {field!r} on DynamoDB: use letters, digits, _, . and - (not 'id')")
    return f"{field}-index"
