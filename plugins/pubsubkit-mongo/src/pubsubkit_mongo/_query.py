"""Translating the Store contract's plain dicts and operations into MongoDB documents, filters and updates.

Documents keep their ``id`` as MongoDB's ``_id`` (unique, indexed, the paging order); every other field is
stored as it is. Equality follows JSON: a scalar never equals an array that merely contains it, as MongoDB's
own ``{field: value}`` would have it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pubsubkit.errors import ConfigError
from pubsubkit.store import Doc, Update

__all__ = ["UpdatePlan", "field_name", "from_mongo", "match", "plan_update", "to_mongo", "where_filter"]

Filter = dict[str, Any]


def to_mongo(doc: Doc) -> dict[str, Any]:
    """The stored form of ``doc``: its ``id`` becomes ``_id``."""
    out: dict[str, Any] = {"_id": doc["id"]}
    out.update((k, v) for k, v in doc.items() if k != "id")
    return out


def from_mongo(stored: Mapping[str, Any]) -> Doc:
    """The Store contract's dict of a stored document: ``_id`` becomes ``id`` again."""
    doc: Doc = {"id": stored["_id"]}
    doc.update((k, v) for k, v in stored.items() if k != "_id")
    return doc


def field_name(field: str) -> str:
    """The stored name of a field (``id`` is ``_id``); refuses names MongoDB would read as operators or paths."""
    if field == "id":
        return "_id"
    if not field or field.startswith("$") or "." in field or "\0" in field:
        raise ConfigError(f"field name {field!r}: MongoDB field names must not start with $ or contain '.'")
    return field


def match(value: Any) -> Any:
    """A condition that holds when a field equals ``value`` exactly (``None``: the field is null or missing)."""
    if value is None:
        return None
    if isinstance(value, list):
        return {"$eq": value, "$size": len(value)}  # not an array holding ``value`` as one element
    if isinstance(value, dict):
        return {"$eq": value}
    return {"$eq": value, "$not": {"$type": "array"}}  # not an array that holds ``value``


def where_filter(where: Mapping[str, Any], after: str | None = None) -> Filter:
    """The filter of ``find_raw``: every field equal, and ids greater than ``after``."""
    clauses: list[Filter] = [{field_name(f): match(v)} for f, v in where.items()]
    if after is not None:
        clauses.append({"_id": {"$gt": after}})
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": clauses}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class UpdatePlan:
    """One :class:`Update` as a single ``find_one_and_update``: a filter holding every condition, and the change.

    ``refused`` is set when the conditions can be judged without the stored document (a bound on a field the
    update sets outright); the store still checks that the document exists first, so NotFound wins.
    """

    def __init__(self, filter: Filter, change: dict[str, Any], refused: str | None) -> None:
        self.filter = filter
        self.change = change
        self.refused = refused


def plan_update(op: Update) -> UpdatePlan:
    """Build the filter and update document of ``op``, with the semantics of :func:`pubsubkit.store.apply_update`.

    ``expect`` fields must equal their values; ``inc`` adds to numbers (a missing field counts as 0); a field
    both set and incremented ends as the set value plus the increment; ``at_least`` bounds the value after the
    change, which is a bound ``value >= bound - increment`` on the stored value.
    """
    sets = {field_name(f): v for f, v in op.set.items()}
    incs = {field_name(f): v for f, v in op.inc.items()}
    refused: str | None = None
    if "_id" in sets and sets.pop("_id") != op.id:
        raise ConfigError(f"{op.collection}/{op.id}: a document's id cannot be changed")
    for f in [f for f in incs if f in sets]:
        if not _is_number(sets[f]):
            refused = f"{op.collection}/{op.id}: field {f} is not a number"
            incs.pop(f)
        else:
            sets[f] = sets[f] + incs.pop(f)
    conditions: list[tuple[str, Any]] = [(field_name(f), match(v)) for f, v in op.expect.items()]
    for f, bound in op.at_least.items():
        name = field_name(f)
        if name in sets:
            if not _is_number(sets[name]) or sets[name] < bound:
                refused = refused or (
                    f"{op.collection}/{op.id}: {f} would be {sets[name]!r}, below its bound {bound!r}"
                )
            continue
        low = bound - incs.get(name, 0)
        # A missing field counts as 0: when 0 is enough, "not below" (which a missing field is) says it.
        conditions.append((name, {"$gte": low} if low > 0 else {"$not": {"$lt": low}}))
    # Conditions at the top level where they can be (simpler plans); a second one on a field goes in $and.
    filter: Filter = {"_id": op.id}
    more: list[Filter] = []
    for name, condition in conditions:
        if name in filter:
            more.append({name: condition})
        else:
            filter[name] = condition
    if more:
        filter["$and"] = more
    change: dict[str, Any] = {}
    if sets:
        change["$set"] = sets
    if incs:
        change["$inc"] = incs
    return UpdatePlan(filter, change, refused)
