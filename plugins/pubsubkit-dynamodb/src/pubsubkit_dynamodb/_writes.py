"""The operations of a unit of work as DynamoDB write requests, and what a failed condition means.

An :class:`~pubsubkit.store.Update` runs on the server when it can: ``SET f = if_not_exists(f, 0) + d`` for an
increment, and a ``ConditionExpression`` for ``expect`` (``f = v``) and ``at_least`` (``f >= bound - d``), so
that concurrent bounded decrements never pass their bound. When the new value must be known to the client (an
increment of an indexed field, whose shadow attribute holds the value's text; a field both set and
incremented; a bound on a field being set), the document is read first, the new values are computed and
written with a condition that the fields read are unchanged; a race retries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
import orjson

from pubsubkit.envelope import Envelope
from pubsubkit.errors import ConfigError
from pubsubkit.store import Delete, Doc, Emit, Insert, MarkProcessed, Operation, Put, Update, apply_update
from pubsubkit_dynamodb._tables import TableInfo
from pubsubkit_dynamodb._values import AV, Expr, index_key, shadow, to_av

OUTBOX_PARTITION = "o"
COUNTER = "outbox-seq"
LEASE = "outbox-lease"


@attrs.frozen
class Write:
    """One item of a transaction: the operation it comes from (``None``: the outbox counter)."""

    op: Operation | None
    kind: str  # Put, Update, Delete or ConditionCheck
    request: dict[str, Any]

    def transact_item(self) -> dict[str, Any]:
        return {self.kind: self.request}


def doc_item(doc: Doc, info: TableInfo) -> dict[str, AV]:
    if not isinstance(doc.get("id"), str) or not doc["id"]:
        raise ConfigError(f"a document in {info.name} needs a non-empty string id, got {doc.get('id')!r}")
    item = {k: to_av(v) for k, v in doc.items()}
    for field in info.indexes:
        item[shadow(field)] = {"S": index_key(doc.get(field))}
    return item


def doc_key(id: str) -> dict[str, AV]:
    if not id:
        raise ConfigError("a document id must not be empty on DynamoDB")
    return {"id": {"S": id}}


def envelope_item(env: Envelope, seq: int) -> dict[str, AV]:
    item: dict[str, AV] = {
        "p": {"S": OUTBOX_PARTITION},
        "seq": {"N": str(seq)},
        "id": {"S": env.id},
        "name": {"S": env.name},
        "at": {"S": env.occurred_at.isoformat()},
        "headers": {"S": orjson.dumps(dict(env.headers)).decode()},
        "payload": {"B": bytes(env.payload)},
    }
    if env.key is not None:
        item["key"] = {"S": env.key}
    return item


def item_envelope(item: Mapping[str, AV]) -> Envelope:
    return Envelope(
        id=item["id"]["S"],
        name=item["name"]["S"],
        payload=bytes(item["payload"]["B"]),
        key=item["key"]["S"] if "key" in item else None,
        occurred_at=datetime.fromisoformat(item["at"]["S"]),
        headers=orjson.loads(item["headers"]["S"]),
    )


def needs_read(op: Update, info: TableInfo) -> bool:
    """Whether the new values of ``op`` must be computed by the client (see the module docstring)."""
    return (
        any(f in info.indexes or f in op.set for f in op.inc)
        or any(f in op.set for f in op.at_least)
        or not (op.set or op.inc)
    )


def _check_fields(op: Update) -> None:
    for field in (*op.set, *op.inc):
        if field == "id":
            raise ConfigError(f"{op.collection}/{op.id}: the id of a document cannot be changed")


def update_request(op: Update, info: TableInfo, current: Doc | None) -> tuple[str, dict[str, Any]]:
    """(kind, request) of an Update; ``current`` is the document read first when :func:`needs_read`."""
    _check_fields(op)
    e = Expr()
    ident = e.name("id")
    conditions = [f"attribute_exists({ident})"]
    conditions += [e.equals(f, v) for f, v in op.expect.items()]
    sets: list[str] = []
    if current is not None:
        new = apply_update(current, op)  # raises ConditionFailed before anything is sent
        for field in op.inc:
            conditions.append(e.equals(field, current.get(field)))  # pinned: the new value was computed from it
        changed = {**op.set, **{f: new[f] for f in op.inc}}
        for field in op.at_least:
            if field not in changed:
                conditions.append(_at_least(e, field, op.at_least[field]))
    else:
        changed = dict(op.set)
        for field, delta in op.inc.items():
            n = e.name(field)
            sets.append(f"{n} = if_not_exists({n}, {e.value({'N': '0'})}) + {e.value(to_av(delta))}")
            conditions.append(f"(attribute_not_exists({n}) OR attribute_type({n}, {e.value({'S': 'N'})}))")
        for field, bound in op.at_least.items():
            conditions.append(_at_least(e, field, bound - op.inc.get(field, 0)))
    for field, value in changed.items():
        sets.append(f"{e.name(field)} = {e.value(to_av(value))}")
        if field in info.indexes:
            sets.append(f"{e.name(shadow(field))} = {e.value({'S': index_key(value)})}")
    condition = " AND ".join(conditions)
    # On a failed condition the item comes back: no second read to tell NotFound from ConditionFailed.
    request = {"TableName": info.name, "Key": doc_key(op.id), "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if not sets:
        return "ConditionCheck", {**request, **e.request(ConditionExpression=condition)}
    return "Update", {
        **request,
        **e.request(UpdateExpression="SET " + ", ".join(sets), ConditionExpression=condition),
    }


def _at_least(e: Expr, field: str, bound: int | float) -> str:
    """``field >= bound``, a missing field counting as 0 (as :func:`~pubsubkit.store.apply_update` does)."""
    n = e.name(field)
    test = f"{n} >= {e.value(to_av(bound))}"
    return f"(attribute_not_exists({n}) OR {test})" if bound <= 0 else test


def build(
    ops: list[Operation],
    infos: Mapping[str, TableInfo],
    currents: Mapping[int, Doc],
    *,
    outbox: str,
    inbox: str,
    meta: str,
    seq: int,
    now: float,
    inbox_ttl: float,
) -> list[Write]:
    """The transaction items of ``ops``; outbox entries get ``seq + 1``, ``seq + 2``... and the counter moves."""
    writes: list[Write] = []
    emitted = 0
    for i, op in enumerate(ops):
        if isinstance(op, Insert | Put):
            info = infos[op.collection]
            e = Expr()
            request: dict[str, Any] = {"TableName": info.name, "Item": doc_item(op.doc, info)}
            if isinstance(op, Insert):
                request.update(e.request(ConditionExpression=f"attribute_not_exists({e.name('id')})"))
            writes.append(Write(op, "Put", request))
        elif isinstance(op, Delete):
            info = infos[op.collection]
            e = Expr()
            request = {"TableName": info.name, "Key": doc_key(op.id)}
            if op.must_exist:
                request.update(e.request(ConditionExpression=f"attribute_exists({e.name('id')})"))
            writes.append(Write(op, "Delete", request))
        elif isinstance(op, Update):
            kind, request = update_request(op, infos[op.collection], currents.get(i))
            writes.append(Write(op, kind, request))
        elif isinstance(op, Emit):
            emitted += 1
            e = Expr()
            request = {
                "TableName": outbox,
                "Item": envelope_item(op.envelope, seq + emitted),
                **e.request(ConditionExpression=f"attribute_not_exists({e.name('seq')})"),
            }
            writes.append(Write(op, "Put", request))
        elif isinstance(op, MarkProcessed):
            writes.append(Write(op, "Put", inbox_request(op, inbox, now, inbox_ttl)))
        else:  # pragma: no cover - the Operation union is closed
            raise TypeError(f"unknown operation {op!r}")
    if emitted:
        writes.append(Write(None, "Update", counter_request(meta, seq, seq + emitted)))
    return writes


def inbox_request(op: MarkProcessed, inbox: str, now: float, inbox_ttl: float) -> dict[str, Any]:
    item: dict[str, AV] = {"g": {"S": op.group}, "m": {"S": op.message_id}, "at": {"N": repr(now)}}
    if inbox_ttl > 0:
        item["expires"] = {"N": str(int(now + inbox_ttl))}
    e = Expr()
    return {"TableName": inbox, "Item": item, **e.request(ConditionExpression=f"attribute_not_exists({e.name('m')})")}


def counter_request(meta: str, old: int, new: int) -> dict[str, Any]:
    """Move the outbox counter from ``old`` to ``new``, only if it still is ``old``."""
    e = Expr()
    n = e.name("n")
    if old == 0:
        condition = f"attribute_not_exists({n}) OR {n} = {e.value({'N': '0'})}"
    else:
        condition = f"{n} = {e.value({'N': str(old)})}"
    return {
        "TableName": meta,
        "Key": {"name": {"S": COUNTER}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",  # the value that beat us, to try again at once
        **e.request(UpdateExpression=f"SET {n} = {e.value({'N': str(new)})}", ConditionExpression=condition),
    }


def target(op: Operation, infos: Mapping[str, TableInfo]) -> tuple[str, str] | None:
    """The item an operation writes (to refuse two writes of one item in a transaction)."""
    if isinstance(op, Insert | Put):
        return (infos[op.collection].name, str(op.doc.get("id")))
    if isinstance(op, Delete | Update):
        return (infos[op.collection].name, op.id)
    if isinstance(op, MarkProcessed):
        return ("inbox", orjson.dumps([op.group, op.message_id]).decode())
    return None
