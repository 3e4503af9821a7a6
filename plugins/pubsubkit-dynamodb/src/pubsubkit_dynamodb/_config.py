"""``dynamodb://?region=...&endpoint_url=...&prefix=...``: the URL, its options and the boto3 client."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.options import flag, number

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_COLLECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
_FIELD = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")

OPTIONS = ("region", "endpoint_url", "prefix", "inbox_ttl", "create_tables", "max_attempts", "timeout")


def _flag(name: str, value: Any) -> bool:
    return flag("dynamodb", name, value)


def _number(name: str, value: Any, minimum: float) -> float:
    return number("dynamodb", name, value, float, minimum)


@attrs.frozen
class Settings:
    """What a ``dynamodb://`` URL and the keyword options of ``open_store`` say."""

    region: str | None
    endpoint_url: str | None
    prefix: str
    inbox_ttl: float
    create_tables: bool
    max_attempts: int
    timeout: float

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
        opts: dict[str, Any] = {**dict(parse_qsl(parts.query)), **options}
        if parts.netloc:
            if opts.get("region", parts.netloc) != parts.netloc:
                raise ConfigError(f"{url!r}: two regions, {parts.netloc!r} and region={opts['region']!r}")
            opts["region"] = parts.netloc
        unknown = sorted(set(opts) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown dynamodb option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
        prefix = str(opts.get("prefix", "pubsubkit"))
        if not _PREFIX.match(prefix):
            raise ConfigError(f"dynamodb option prefix={prefix!r}: use 1-100 letters, digits, _ and -")
        endpoint = opts.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
        return cls(
            region=str(opts["region"]) if opts.get("region") else None,
            endpoint_url=str(endpoint) if endpoint else None,
            prefix=prefix,
            inbox_ttl=_number("inbox_ttl", opts.get("inbox_ttl", 14 * 24 * 3600), 0),
            create_tables=_flag("create_tables", opts.get("create_tables", True)),
            max_attempts=int(_number("max_attempts", opts.get("max_attempts", 5), 1)),
            timeout=_number("timeout", opts.get("timeout", 10), 0.1),
        )

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


def make_client(settings: Settings) -> Any:
    """A boto3 DynamoDB client (thread-safe; it does not connect until the first request)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.timeout,
        read_timeout=max(settings.timeout, 5.0),
        max_pool_connections=64,
    )
    session = boto3.session.Session()
    try:
        return session.client(
            "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
        )
    except NoRegionError:
        raise ConfigError(
            "no AWS region for dynamodb://: add ?region=us-east-1 to the URL or set AWS_REGION / AWS_DEFAULT_REGION"
        ) from None
