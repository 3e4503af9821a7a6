"""Consumer-group bookkeeping over an append-only message log, shared by the memory backend.

Each group has a committed offset (everything at or below it is settled) and claims on the messages above
it. A message is handed out when it is unclaimed (or its claim's lease ran out) and no earlier message with
the same key is still unsettled in the group, which keeps per-key order across the members of a group.
"""

from __future__ import annotations

import attrs


@attrs.define
class Claim:
    owner: str | None
    lease_until: float
    attempts: int
    done: bool = False


@attrs.define
class GroupState:
    committed: int = 0
    claims: dict[int, Claim] = attrs.field(factory=dict)

    def advance(self) -> None:
        nxt = self.committed + 1
        while (c := self.claims.get(nxt)) is not None and c.done:
            del self.claims[nxt]
            self.committed = nxt
            nxt += 1
