"""Backend URLs: the scheme that picks a backend, and the form safe to log."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pubsubkit.errors import ConfigError

__all__ = ["redact", "scheme_of"]


def scheme_of(url: str) -> str:
    """The lower-case scheme of a backend URL; a :class:`~pubsubkit.errors.ConfigError` without one."""
    if "://" not in url:
        raise ConfigError(f"{url!r} is not a backend URL: expected scheme://..., e.g. sqlite:///data/app.db")
    return url.split("://", 1)[0].lower()


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, safe for logs and metrics."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
