"""Who is calling: signed bearer tokens (JWT, HS256), their roles, and the checks the resources make.

Two roles: an **organizer** creates and changes events and locations and may see and cancel any booking; a
**user** books, and sees and cancels only their own bookings. A token names its subject (``sub``, the user id of
the bookings it makes), its role (``role``), its issuer (``iss``) and its expiry (``exp``), at most
``max_lifetime`` seconds ahead (30 days unless configured); an audience (``aud``) is checked when one is configured.

When no secret is configured, every service of a machine and ``myevents token`` share a random one kept in the
data directory (``jwt-secret``, mode 0600), made by whichever of them needs it first.

Neither a secret nor a token is ever logged or put in a response.
"""

from __future__ import annotations

import time
from typing import Final

import attrs
import falcon
import jwt

from myevents.config import MIN_SECRET_BYTES
from myevents.tokens import ALGORITHM, ROLES, SECRET_FILE, SUBJECT, AuthSettings, Role, issue, settings
from myevents.web.problems import Problem

__all__ = [
    "ALGORITHM",
    "MIN_SECRET_BYTES",
    "ROLES",
    "SECRET_FILE",
    "AuthSettings",
    "Authentication",
    "Principal",
    "Role",
    "authenticate",
    "check_user",
    "issue",
    "require_organizer",
    "settings",
    "verify",
]

_CHALLENGE: Final = 'Bearer realm="myevents"'


@attrs.frozen
class Principal:
    """The caller a valid token names."""

    subject: str
    role: Role

    @property
    def organizer(self) -> bool:
        return self.role == "organizer"


def _unauthorized(detail: str, *, invalid: bool = True) -> Problem:
    challenge = f'{_CHALLENGE}, error="invalid_token"' if invalid else _CHALLENGE
    return Problem(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})


def verify(auth: AuthSettings, token: str) -> Principal:
    """The principal ``token`` names; a 401 :class:`Problem` (that never repeats the token) otherwise."""
    try:
        claims = jwt.decode(
            token,
            auth.secret,
            algorithms=[ALGORITHM],
            issuer=auth.issuer,
            audience=auth.audience,
            options={"require": ["exp", "iss", "sub"], "verify_aud": auth.audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the token has expired; get a new one") from None
    except jwt.InvalidIssuerError:
        raise _unauthorized("the token is from another issuer") from None
    except jwt.InvalidAudienceError:
        raise _unauthorized("the token is for another audience") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _unauthorized(f"the token has no {exc.claim!r} claim") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("the token is not valid (malformed, or not signed with this service's secret)") from None
    left = claims["exp"] - time.time() if isinstance(claims.get("exp"), int | float) else None
    if left is None or left > auth.max_lifetime:
        raise _unauthorized(
            f"the token is valid for longer than the {auth.max_lifetime}s this service accepts; get one that"
            " expires sooner"
        )
    subject, role = claims.get("sub"), claims.get("role")
    if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
        raise _unauthorized("the token's subject is not a user id")
    if role not in ROLES:
        raise _unauthorized(f"the token's role must be one of {', '.join(ROLES)}")
    return Principal(subject, role)


def authenticate(req: falcon.Request) -> Principal:
    """The caller of ``req`` by its ``Authorization: Bearer`` token; 401 without a valid one."""
    cached: Principal | None = req.context.get("principal")
    if cached is not None:
        return cached
    auth: AuthSettings = req.context.auth
    header = req.get_header("Authorization")
    if not header:
        raise _unauthorized("this route needs a token: send Authorization: Bearer <token>", invalid=False)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send the token as Authorization: Bearer <token>")
    principal = verify(auth, token.strip())
    req.context.principal = principal
    return principal


def require_organizer(req: falcon.Request) -> Principal:
    """The caller of ``req`` if an organizer: 401 without a valid token, 403 for a user."""
    principal = authenticate(req)
    if not principal.organizer:
        raise Problem(403, "only an organizer may do this", kind="forbidden")
    return principal


def check_user(req: falcon.Request, user_id: str, what: str) -> Principal:
    """The caller of ``req`` if it is the user ``user_id`` or an organizer: 401 or 403 otherwise."""
    principal = authenticate(req)
    if not principal.organizer and principal.subject != user_id:
        raise Problem(403, f"{what} belongs to another user", kind="forbidden")
    return principal


class Authentication:
    """Falcon middleware giving each request the token settings (``req.context.auth``); resources decide."""

    def __init__(self, auth: AuthSettings) -> None:
        self.auth = auth

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.auth = self.auth
