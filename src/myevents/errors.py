"""What the services' behaviour refuses, said without HTTP: the catalog and the ledger raise these.

Each error carries a human-readable ``detail`` and a ``kind`` (the last part of the problem type the web layer
answers with, ``urn:myevents:problem:<kind>``). The web layer maps them to problem documents in one place
(:mod:`myevents.web.problems`): a :class:`NotFound` is a 404, a :class:`Conflict` a 409 and an :class:`Invalid` a
422 listing its fields.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Conflict", "DomainError", "FieldError", "Invalid", "NotFound", "fields_detail"]

#: ``{"field": "Halls[0].capacity", "reason": "must be at least 1"}``
FieldError = dict[str, str]


def fields_detail(errors: Sequence[FieldError]) -> str:
    """``invalid fields: A, B``: the first five fields of ``errors`` (an empty name is the body itself)."""
    fields = ", ".join(e["field"] or "the body" for e in errors[:5])
    return f"invalid fields: {fields}"


class DomainError(Exception):
    """A request the services' behaviour refuses: ``detail`` says why, ``kind`` names the reason."""

    def __init__(self, detail: str, *, kind: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind


class NotFound(DomainError):
    """Nothing with the ID or name asked for."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, kind="not-found")


class Conflict(DomainError):
    """Refused because of the state things are in; ``kind`` says which: ``conflict`` (an ID taken, or a
    document others kept changing), ``cancelled``, ``in-use``, ``sold-out``, ``capacity-unknown``."""

    def __init__(self, detail: str, *, kind: str = "conflict") -> None:
        super().__init__(detail, kind=kind)


class Invalid(DomainError):
    """Input that is well-formed but not acceptable: each of ``errors`` names a field and why."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(fields_detail(errors), kind="invalid-fields")
        self.errors = list(errors)
