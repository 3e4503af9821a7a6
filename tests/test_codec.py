from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import attrs
import pytest

from pubsubkit import WIRE_NAME, Codec, DecodeError, EventRegistry, UnknownEvent, event, new_id, upcaster
from pubsubkit.envelope import Header


@pytest.fixture
def reg() -> EventRegistry:
    return EventRegistry()


@attrs.frozen
class Hall:
    name: str
    capacity: int


def test_round_trip_with_renames_datetimes_and_nesting(reg: EventRegistry) -> None:
    @event("locationCreated", into=reg)
    @attrs.frozen
    class LocationCreated:
        id: str
        halls: list[Hall]
        opened: datetime
        country: str | None = attrs.field(default=None, metadata={WIRE_NAME: "Country"})

    codec = Codec(reg)
    ev = LocationCreated("l1", [Hall("a", 10)], datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "DE")
    env = codec.envelope(ev, key="l1", headers={Header.CORRELATION_ID: "c1"})
    assert env.name == "locationCreated"
    assert b'"Country":"DE"' in env.payload
    assert codec.decode(env) == ev
    assert env.key == "l1"
    assert env.correlation_id == "c1"


def test_unknown_name_reaches_fallback_type(reg: EventRegistry) -> None:
    codec = Codec(reg)
    got = codec.decode_payload("somethingNew", b'{"x": 1}')
    assert got == UnknownEvent("somethingNew", {"x": 1})


def test_malformed_payloads_raise_decode_error(reg: EventRegistry) -> None:
    @event("e", into=reg)
    @attrs.frozen
    class E:
        n: int

    codec = Codec(reg)
    with pytest.raises(DecodeError):
        codec.decode_payload("e", b"{not json")
    with pytest.raises(DecodeError, match="n"):
        codec.decode_payload("e", b'{"n": "not a number"}')
    with pytest.raises(DecodeError, match="JSON object"):
        codec.decode_payload("e", b"[1, 2]")
    assert codec.decode_payload("e", b'{"n": 3, "extra": true}') == E(3)


def test_upcasters_lift_old_payloads(reg: EventRegistry) -> None:
    @event("booked", version=3, into=reg)
    @attrs.frozen
    class Booked:
        event_id: str
        seats: int

    @upcaster("booked", 1, into=reg)
    def v1(p: dict[str, object]) -> dict[str, object]:
        return {"event_id": p["eventId"], "seats": 1}

    @upcaster("booked", 2, into=reg)
    def v2(p: dict[str, object]) -> dict[str, object]:
        return {**p, "seats": int(str(p["seats"])) * 2}

    codec = Codec(reg)
    assert codec.decode_payload("booked", b'{"eventId": "e1"}', version=1) == Booked("e1", 2)
    assert codec.decode_payload("booked", b'{"event_id": "e1", "seats": 5}', version=3) == Booked("e1", 5)
    env = codec.envelope(Booked("e", 1))
    assert env.schema_version == 3
    with pytest.raises(DecodeError, match="newer"):
        codec.decode_payload("booked", b'{"event_id": "e1", "seats": 5}', version=4)


def test_ids_are_unique_and_time_ordered() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i[14] == "7" for i in ids[:10])  # UUID version 7
    parsed = [uuid.UUID(i) for i in ids[:1000]]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 and str(u) == i for u, i in zip(parsed, ids, strict=False))
    first, last = (int(i.replace("-", "")[:12], 16) for i in (ids[0], ids[-1]))
    assert before <= first <= last <= after + len(ids) // 4096  # a full counter borrows the next millisecond


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_ids_of_a_forked_child_differ_from_its_parents() -> None:
    new_id()  # the parent has random digits in hand
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids, then exit at once
        os.close(read)
        os.write(write, "\n".join(new_id() for _ in range(200)).encode())
        os._exit(0)
    os.close(write)
    mine = [new_id() for _ in range(200)]
    with os.fdopen(read, "rb") as f:
        theirs = f.read().decode().split("\n")
    os.waitpid(pid, 0)
    assert len(theirs) == 200
    assert {i[19:] for i in mine}.isdisjoint(i[19:] for i in theirs)  # their random parts
