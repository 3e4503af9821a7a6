"""myevents' event classes keep the contract it published (docs/contracts/myevents-events.json), and the check
catches what would break a reader: issue 23's "removing a field from eventCreated without a new version fails,
adding an optional field does not"."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

import myevents.contracts
import pubsubkit
from pubsubkit.events import registry
from pubsubkit.testing import assert_contract_kept

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "myevents-events.json"


def with_event_created(cls: type[Any], version: int = 1) -> pubsubkit.EventRegistry:
    """myevents' registry with ``cls`` as ``eventCreated`` instead of the real class."""
    reg = pubsubkit.EventRegistry()
    for et in registry:
        if et.name != "eventCreated":
            reg.register(et.cls, et.name, et.version)
    reg.register(cls, "eventCreated", version)
    return reg


def test_myevents_keeps_its_published_contract() -> None:
    assert_contract_kept(PUBLISHED)


def test_the_published_contract_lists_every_event_myevents_registers() -> None:
    published = set(json.loads(PUBLISHED.read_text()))
    classes = [getattr(myevents.contracts, n) for n in myevents.contracts.__all__]
    registered = {et.name for et in registry if et.cls in classes}
    assert published == registered, "run: pubsubkit schema myevents.contracts --out " + str(PUBLISHED)


def test_removing_a_field_from_event_created_without_a_new_version_breaks_the_contract() -> None:
    @attrs.frozen
    class EventCreated:  # without name
        id: str
        location_id: str
        start_date: datetime
        end_date: datetime
        duration: int = 0

    with pytest.raises(AssertionError, match=r"eventCreated: field name was removed \(publish a new version"):
        assert_contract_kept(PUBLISHED, with_event_created(EventCreated))


def test_retyping_a_field_breaks_the_contract() -> None:
    @attrs.frozen
    class EventCreated:
        id: str
        name: str
        location_id: str
        start_date: datetime
        end_date: datetime
        duration: str = ""  # was an int

    with pytest.raises(AssertionError, match=r"eventCreated.duration changed type from integer to string"):
        assert_contract_kept(PUBLISHED, with_event_created(EventCreated))


def test_adding_an_optional_field_keeps_the_contract() -> None:
    @attrs.frozen
    class EventCreated:
        id: str
        name: str
        location_id: str
        start_date: datetime
        end_date: datetime
        duration: int = 0
        price: int = 0  # new, with a default

    assert_contract_kept(PUBLISHED, with_event_created(EventCreated))


def test_adding_a_required_field_breaks_the_contract() -> None:
    @attrs.frozen
    class EventCreated:
        id: str
        name: str
        location_id: str
        start_date: datetime
        end_date: datetime
        price: int
        duration: int = 0

    with pytest.raises(AssertionError, match=r"new field price is required"):
        assert_contract_kept(PUBLISHED, with_event_created(EventCreated))


def test_a_removal_with_a_new_version_and_its_upcaster_keeps_the_contract() -> None:
    @attrs.frozen
    class EventCreated:
        id: str
        location_id: str
        start_date: datetime
        end_date: datetime
        duration: int = 0

    reg = with_event_created(EventCreated, version=2)
    with pytest.raises(AssertionError, match=r"schema version 1 -> 2 without an upcaster from version 1"):
        assert_contract_kept(PUBLISHED, reg)
    reg.add_upcaster("eventCreated", 1, lambda payload: {k: v for k, v in payload.items() if k != "name"})
    assert_contract_kept(PUBLISHED, reg)
