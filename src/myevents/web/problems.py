"""Errors as RFC 9457 problem details (``application/problem+json``), mapped in one place.

Responders raise :class:`Problem` for what is HTTP's own concern (a token, a body), and let the services' domain
errors (:mod:`myevents.errors`) and pubsubkit's errors through; :func:`install` registers the handlers that turn
every exception into a problem document, so no responder needs a ``try``/``except`` ladder. Anything unexpected
is logged with its traceback and answered with a 500 that reveals nothing internal.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn

import falcon
import orjson

import pubsubkit
from myevents.errors import Conflict, DomainError, FieldError, Invalid, NotFound, fields_detail
from myevents.web import WebApp

__all__ = ["DOMAIN_STATUS", "PROBLEM_JSON", "FieldError", "Problem", "domain_problem", "install"]

log = logging.getLogger("myevents.http")

PROBLEM_JSON = "application/problem+json"

#: The status each kind of domain error is answered with (a subclass takes its nearest base's).
DOMAIN_STATUS: Final[Mapping[type[DomainError], int]] = {NotFound: 404, Conflict: 409, Invalid: 422}


class Problem(falcon.HTTPError):
    """An HTTP error with a problem type, a human-readable detail and, for 422, the offending fields.

    :param kind: the last part of the problem type URI (``urn:myevents:problem:<kind>``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, title=http.HTTPStatus(status).phrase, description=detail, headers=headers)
        self.kind = kind
        self.errors = list(errors)

    @classmethod
    def invalid(cls, errors: Sequence[FieldError]) -> Problem:
        """A 422 listing ``errors``, each a field and the reason it is refused."""
        return cls(422, fields_detail(errors), kind="invalid-fields", errors=errors)


def domain_problem(err: DomainError) -> Problem | None:
    """The problem document answering ``err``, by :data:`DOMAIN_STATUS`; ``None`` for a kind it does not list."""
    status = next((DOMAIN_STATUS[c] for c in type(err).__mro__ if c in DOMAIN_STATUS), None)
    if status is None:
        return None
    errors = err.errors if isinstance(err, Invalid) else ()
    return Problem(status, err.detail, kind=err.kind, errors=errors)


def _document(exc: falcon.HTTPError) -> dict[str, Any]:
    code = exc.status_code
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    kind = exc.kind if isinstance(exc, Problem) else None
    title = exc.title if isinstance(exc, Problem) else phrase  # falcon's own titles repeat the status code
    doc: dict[str, Any] = {
        "type": f"urn:myevents:problem:{kind}" if kind else "about:blank",
        "title": title or phrase,
        "status": code,
        "detail": exc.description or title or phrase,
    }
    if isinstance(exc, Problem) and exc.errors:
        doc["errors"] = exc.errors
    return doc


def _serialize(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    doc = _document(exc)
    if not isinstance(exc, Problem):  # falcon's own routing errors: say what was asked
        if exc.status_code == 404:
            doc["detail"] = f"nothing at {req.path}"
        elif exc.status_code == 405:
            allowed = dict(exc.headers or {}).get("Allow", "")
            doc["detail"] = f"{req.method} is not allowed on {req.path} (allowed: {allowed})"
    resp.content_type = PROBLEM_JSON
    resp.data = orjson.dumps(doc)


def _raise(status: int, kind: str) -> Any:
    def handler(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
        raise Problem(status, str(ex), kind=kind) from ex

    return handler


def _unavailable(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    log.warning("backend unavailable: %s", ex)
    raise Problem(503, "a backend is unavailable; try again shortly", kind="unavailable", headers={"Retry-After": "1"})


def _unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> NoReturn:
    log.error("unhandled error on %s %s", req.method, req.path, exc_info=ex)
    raise Problem(500, "the server failed to handle this request; it has been logged", kind="internal")


def _domain(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    problem = domain_problem(ex) if isinstance(ex, DomainError) else None
    if problem is None:
        _unexpected(req, resp, ex, params)
    raise problem from ex


def install(app: WebApp) -> None:
    """Render every error of ``app`` as a problem document."""
    app.set_error_serializer(_serialize)
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(DomainError, _domain)
    app.add_error_handler(pubsubkit.NotFound, _raise(404, "not-found"))
    app.add_error_handler(pubsubkit.DuplicateError, _raise(409, "conflict"))
    app.add_error_handler(pubsubkit.ConditionFailed, _raise(409, "conflict"))
    app.add_error_handler(pubsubkit.ConnectionLost, _unavailable)
    app.add_error_handler(pubsubkit.Closed, _unavailable)
