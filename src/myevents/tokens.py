"""Signing tokens without the web stack: the roles, the token settings and their secret, and issuing a token.

What ``myevents token`` and a gunicorn master need (neither serves requests), apart from
:mod:`myevents.web.auth`, which checks tokens on requests and imports falcon. :mod:`myevents.web.auth` re-exports
every name here.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from typing import Final, Literal

import attrs

from myevents.config import DEFAULT_MAX_TOKEN_LIFETIME, Config, check_secret
from pubsubkit.errors import ConfigError

__all__ = ["ALGORITHM", "ROLES", "SECRET_FILE", "SUBJECT", "AuthSettings", "Role", "issue", "settings"]

ALGORITHM: Final = "HS256"
#: The file in the data directory holding the secret when none is configured.
SECRET_FILE: Final = "jwt-secret"

Role = Literal["organizer", "user"]
ROLES: Final[tuple[Role, ...]] = ("organizer", "user")

#: What a subject (a user id) may be: the booking service's user ids.
SUBJECT: Final = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@attrs.frozen
class AuthSettings:
    """The key and the claims tokens are signed with and checked against."""

    secret: bytes = attrs.field(repr=False)
    issuer: str
    audience: str | None = None
    #: The longest lifetime a token may have left (its ``exp`` at most this many seconds ahead).
    max_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME


def _make_secret_file(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):  # another process was first: its secret wins
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _data_dir_secret(data_dir: str) -> bytes:
    """The secret kept in ``data_dir``, made (random, mode 0600) if there is none yet.

    The file appears complete or not at all (written aside, then linked into place), so processes starting
    together agree on one secret.
    """
    path = os.path.join(data_dir, SECRET_FILE)
    if not os.path.exists(path):
        try:
            _make_secret_file(path)
        except OSError as exc:
            raise ConfigError(
                f"cannot make the token secret {path} ({exc.strerror}): set MYEVENTS_JWT_SECRET, or fix the data "
                "directory's permissions"
            ) from None
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token secret {path} ({exc.strerror}): fix its permissions") from None
    return check_secret(secret, f"the token secret in {path}")


def settings(config: Config) -> AuthSettings:
    """The token settings of ``config``: its secret, or the data directory's (made on first use)."""
    secret = config.jwt_secret.encode() if config.jwt_secret is not None else _data_dir_secret(config.data_dir)
    return AuthSettings(secret, config.jwt_issuer, config.jwt_audience, config.jwt_max_lifetime)


def issue(auth: AuthSettings, role: Role, subject: str, ttl: float, *, now: float | None = None) -> str:
    """A token for ``subject`` in ``role``, valid for ``ttl`` seconds."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not SUBJECT.fullmatch(subject):
        raise ValueError(f"{subject!r} is not a user id (1 to 64 letters, digits, _.@-)")
    if ttl > auth.max_lifetime:
        raise ConfigError(
            f"a token valid for {int(ttl)}s would be refused: the services accept at most {auth.max_lifetime}s"
            " (MYEVENTS_JWT_MAX_LIFETIME); ask for less, or raise that setting"
        )
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": subject,
        "role": role,
        "iss": auth.issuer,
        "iat": issued,
        "exp": issued + int(ttl),
    }
    if auth.audience is not None:
        claims["aud"] = auth.audience
    import jwt  # here: a gunicorn master makes no token, and need not load PyJWT

    return jwt.encode(claims, auth.secret, algorithm=ALGORITHM)
