"""The outbox and the inbox of the DynamoDB store.

The outbox is one partition (``p = "o"``) of the outbox table, sorted by ``seq``: the relay reads it in order
with consistent queries. Sequence numbers come from the counter item ``outbox-seq`` of the meta table, moved in
the transaction that writes the entries (see :mod:`pubsubkit_dynamodb._store`). The relay lease is the item
``outbox-lease``. Inbox records carry the TTL attribute ``expires``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pubsubkit.store import OutboxEntry
from pubsubkit_dynamodb import _writes as w
from pubsubkit_dynamodb._base import BaseStore
from pubsubkit_dynamodb._errors import is_client_error
from pubsubkit_dynamodb._values import Expr


class BoxesStore(BaseStore):
    """The outbox and inbox operations of :class:`~pubsubkit.store.Store`."""

    def _counter(self) -> int:
        """The outbox sequence counter: cached, or read (never below the last entry's seq)."""
        if self._seq is not None:
            return self._seq
        s = self.settings
        found = self._call(
            "reading the outbox counter",
            self.client.get_item,
            TableName=s.meta_table,
            Key={"name": {"S": w.COUNTER}},
            ConsistentRead=True,
        )
        counter = int(found.get("Item", {}).get("n", {}).get("N", "0"))
        e = Expr()
        last = self._call(
            "reading the outbox",
            self.client.query,
            TableName=s.outbox_table,
            ConsistentRead=True,
            ScanIndexForward=False,
            Limit=1,
            **e.request(KeyConditionExpression=f"{e.name('p')} = {e.value({'S': w.OUTBOX_PARTITION})}"),
        )
        top = max((int(i["seq"]["N"]) for i in last.get("Items", [])), default=0)
        self._seq = max(counter, top)
        return self._seq

    def _outbox_query(self, **extra: Any) -> dict[str, Any]:
        e = Expr()
        return {
            "TableName": self.settings.outbox_table,
            "ConsistentRead": True,
            **e.request(KeyConditionExpression=f"{e.name('p')} = {e.value({'S': w.OUTBOX_PARTITION})}"),
            **extra,
        }

    def outbox_pending(self, limit: int) -> list[OutboxEntry]:
        self._system()
        out: list[OutboxEntry] = []
        request = self._outbox_query(Limit=max(1, min(limit, 1000)))
        for item in self._pages("query", "reading the outbox", request):
            out.append(OutboxEntry(int(item["seq"]["N"]), w.item_envelope(item)))
            if len(out) >= limit:
                break
        return out

    def outbox_count(self) -> int:
        self._system()
        request = self._outbox_query(Select="COUNT")
        total = 0
        while True:
            page = self._call("counting the outbox", self.client.query, **request)
            total += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                return total
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def outbox_mark_sent(self, seqs: Sequence[int]) -> None:
        self._system()
        keys = [{"p": {"S": w.OUTBOX_PARTITION}, "seq": {"N": str(s)}} for s in seqs]
        self._delete_many(self.settings.outbox_table, keys)

    def outbox_claim(self, owner: str, seconds: float) -> bool:
        """The relay lease: an item of the meta table, taken when free, expired or ours (client clocks)."""
        self._system()
        now = time.time()
        e = Expr()
        o, u = e.name("owner"), e.name("until")
        request = e.request(
            UpdateExpression=f"SET {o} = {e.value({'S': owner})}, {u} = {e.value({'N': repr(now + seconds)})}",
            ConditionExpression=(
                f"attribute_not_exists({o}) OR {o} = {e.value({'S': owner})} OR {u} < {e.value({'N': repr(now)})}"
            ),
        )
        try:
            self.client.update_item(TableName=self.settings.meta_table, Key={"name": {"S": w.LEASE}}, **request)
            return True
        except Exception as exc:
            if is_client_error(exc, "ConditionalCheckFailedException"):
                return False
            raise self._error(exc, "taking the outbox relay lease") from exc

    # --- the inbox ----------------------------------------------------------------------------------------

    def inbox_contains(self, group: str, message_id: str) -> bool:
        self._system()
        found = self._call(
            "reading the inbox",
            self.client.get_item,
            TableName=self.settings.inbox_table,
            Key={"g": {"S": group}, "m": {"S": message_id}},
            ConsistentRead=True,
        )
        return "Item" in found

    def prune_inbox(self, older_than_seconds: float) -> int:
        """Delete records older than this now (the TTL attribute also expires them, within days, on AWS)."""
        self._system()
        e = Expr()
        request = {
            "TableName": self.settings.inbox_table,
            **e.request(
                FilterExpression=f"{e.name('at')} < {e.value({'N': repr(time.time() - older_than_seconds)})}",
                ProjectionExpression=f"{e.name('g')}, {e.name('m')}",
            ),
        }
        keys = [{"g": i["g"], "m": i["m"]} for i in self._pages("scan", "scanning the inbox", request)]
        self._delete_many(self.settings.inbox_table, keys)
        return len(keys)
