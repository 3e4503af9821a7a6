"""The fault suite: under faults, no event is lost and no effect is applied twice.

``PUBSUBKIT_FAULT_BROKER`` (``embedded``, ``kafka``, ``rabbitmq``, ``sqs``) picks the broker and
``PUBSUBKIT_FAULT_STORE`` (``mongo``, ``dynamodb``) the store of the store-down scenario; tox runs one
environment per backend (``tox -m faults``). ``PUBSUBKIT_FAULT_SIZE=full`` runs the streams at 10,000 events
(the default, ``quick``, at 3,000). Each scenario adds a row to the table printed at the end: events sent,
handled, lost, applied twice. Consumers are separate processes (``tests/procs``) applying each message
through ``msg.unit_of_work()``: one ``Applied`` document per message, written with the inbox record.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from backend_urls import AWS, SERVER, broker_url, servers, store_url
from fault_stream import BROKER, COUNT, RATE, STORE, WAIT, Stream, not_applicable
from fault_table import Row
from myevents_procs import Proc, call, free_port, wait_ready
from myevents_support import TEST_SECRET, Bus, as_organizer
from proc_model import Applied, Ticked, applied
from prometheus_client import CollectorRegistry

import pubsubkit
from myevents import contracts
from pubsubkit.testing import unique_name, wait_until

pytestmark = pytest.mark.faults

#: Brokers that route by event name: a group gets only the names it listens to, never an unknown one.
ROUTES_BY_NAME = {"rabbitmq"}


def test_broker_restarted_twice_during_a_stream(stream: Stream, table: list[Row]) -> None:
    scenario = "broker restarted twice mid-stream"
    if STORE:
        pytest.skip("run by the broker environments")
    if BROKER == "embedded":
        not_applicable(table, scenario, "embedded: no server to restart")
    stream.consumer("c1")
    stream.consumer("c2")
    stream.emit(COUNT, RATE)
    started, seconds = time.monotonic(), COUNT / RATE
    for at in (0.25, 0.6):  # of the stream's planned length
        time.sleep(max(0.0, started + seconds * at - time.monotonic()))
        servers("restart", SERVER[BROKER])
    result = stream.emitted()
    assert result["error"] is None, result
    stream.wait_applied(result["emitted"])
    row = stream.row(scenario, result["emitted"], "emitter retried within 60 s")
    table.append(row)
    assert (row.lost, row.twice) == (0, 0)


@pytest.mark.parametrize("mode", ["one", "batch"])
def test_a_consumer_killed_mid_stream_and_restarted(stream: Stream, table: list[Row], mode: str) -> None:
    scenario = "consumer SIGKILLed mid-stream, restarted" + (" (batch handlers)" if mode == "batch" else "")
    if STORE:
        pytest.skip("run by the broker environments")
    stream.consumer("c1", mode)
    stream.consumer("c2", mode)
    stream.emit(COUNT, RATE)
    wait_until(lambda: len(stream.effects()) >= COUNT // 4, WAIT, "a quarter of the stream", interval=0.2)
    stream.members["c2"].send_signal(signal.SIGKILL)
    stream.members["c2"].wait(30)
    wait_until(lambda: len(stream.effects()) >= COUNT // 2, WAIT, "half of the stream", interval=0.2)
    stream.consumer("c2-again", mode)
    result = stream.emitted()
    assert result["error"] is None, result
    stream.wait_applied(COUNT)
    row = stream.row(scenario, COUNT, "the other member kept going")
    table.append(row)
    assert (row.lost, row.twice) == (0, 0)


@pytest.fixture
def events_service(tmp_path: Path) -> Iterator[tuple[str, Proc, Bus, dict[str, str]]]:
    """The event service as a process on the broker under test (and, in the store envs, that store)."""
    run = unique_name("fault")
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "MYEVENTS_BROKER_URL": broker_url(BROKER, run, data),
        "MYEVENTS_DATA_DIR": str(data),
        "MYEVENTS_JWT_SECRET": TEST_SECRET,
        **AWS,
    }
    if STORE:
        env["MYEVENTS_STORE_URL"] = store_url(STORE, run, data)
    bus = Bus(pubsubkit.open_broker(env["MYEVENTS_BROKER_URL"]))
    url = f"http://127.0.0.1:{free_port()}"
    proc = Proc(tmp_path, "events", "event-service", "--bind", url.removeprefix("http://"), env=env)
    try:
        wait_ready(url, proc)
        yield url, proc, bus, env
    finally:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()
        bus.listener.close()
        bus.broker.close()


def new_event(url: str, location_id: str, i: int) -> tuple[int, Any]:
    body = {"Name": f"e{i}", "StartDate": 1, "EndDate": 2, "Location": {"ID": location_id}}
    status, got, _ = call("POST", url + "/events", body, as_organizer())
    return status, got


def distinct_ids(bus: Bus, cls: type[Any]) -> set[str]:
    return {env.id for _, env in bus.of(cls)}


def test_broker_down_while_the_event_service_accepts_writes(
    events_service: tuple[str, Proc, Bus, dict[str, str]], table: list[Row]
) -> None:
    scenario = "broker down while writes are accepted (outbox)"
    if STORE:
        pytest.skip("run by the broker environments")
    if BROKER == "embedded":
        not_applicable(table, scenario, "embedded: no server to stop")
    url, _, bus, _ = events_service
    status, location, _ = call(
        "POST", url + "/locations", {"Name": "L", "Halls": [{"name": "h", "capacity": 5}]}, as_organizer()
    )
    assert status == 201
    wait_until(lambda: distinct_ids(bus, contracts.LocationCreated), WAIT, "the auditor to hear the location")
    servers("down", SERVER[BROKER])
    try:
        accepted = [new_event(url, location["ID"], i) for i in range(20)]
        assert [s for s, _ in accepted] == [201] * 20  # the outbox takes them: the broker is not needed to accept
        assert call("GET", url + "/ready")[0] == 503
        assert not distinct_ids(bus, contracts.EventCreated)
    finally:
        servers("up", SERVER[BROKER])
    ids = {body["ID"] for _, body in accepted}
    heard = lambda: {e.id for e, _ in bus.of(contracts.EventCreated)}  # noqa: E731
    wait_until(lambda: heard() >= ids, WAIT, lambda: f"20 events after the broker returned; heard {len(heard())}")
    counts = Counter(e.id for e, _ in bus.of(contracts.EventCreated))
    row = Row(
        scenario, 20, len(ids & heard()), len(ids - heard()), 0, f"{sum(counts.values()) - len(counts)} redelivered"
    )
    table.append(row)
    assert row.lost == 0


def test_the_store_down(events_service: tuple[str, Proc, Bus, dict[str, str]], table: list[Row]) -> None:
    scenario = "store down"
    if not STORE:
        pytest.skip("run by the store environments (PUBSUBKIT_FAULT_STORE)")
    url, _, bus, _ = events_service
    status, location, _ = call(
        "POST", url + "/locations", {"Name": "L", "Halls": [{"name": "h", "capacity": 5}]}, as_organizer()
    )
    assert status == 201
    ok = [new_event(url, location["ID"], i)[1]["ID"] for i in range(5)]
    servers("down", SERVER[STORE])
    try:
        status, problem = new_event(url, location["ID"], 99)
        assert status == 503, problem
        assert problem["status"] == 503, problem
        assert problem["title"], problem
        assert call("GET", url + "/ready")[0] == 503
    finally:
        servers("up", SERVER[STORE])

    def recovered() -> bool:
        status, body = new_event(url, location["ID"], 100)
        if status == 201:
            ok.append(body["ID"])
        return status == 201

    wait_until(recovered, WAIT, "the event service to recover by itself", interval=1.0)
    listed = {e["ID"] for e in call("GET", url + "/events")[1]}
    wait_until(lambda: {e.id for e, _ in bus.of(contracts.EventCreated)} >= set(ok), WAIT, "every accepted event")
    heard = {e.id for e, _ in bus.of(contracts.EventCreated)}
    row = Row(scenario, len(ok), len(heard), len(set(ok) - heard), 0, f"{STORE}: 503 while down; no half write")
    table.append(row)
    assert listed == set(ok) == heard  # nothing half: the refused write left no document and no event


@pubsubkit.event("faultUnknown")
@attrs.frozen
class Unknown:
    note: str


def test_poison_and_unknown_messages_on_the_bus(tmp_path: Path, table: list[Row]) -> None:
    if STORE:
        pytest.skip("run by the broker environments")
    url = broker_url(BROKER, unique_name("fault"), tmp_path)
    registry = CollectorRegistry()
    pm = pubsubkit.get_plugin_manager(metrics_registry=registry)
    bad_types = pubsubkit.EventRegistry()

    @attrs.frozen
    class BadTicked:
        seq: str

    bad_types.register(BadTicked, "procTicked")  # the name of Ticked, with a payload Ticked cannot decode
    store = pubsubkit.open_store(f"sqlite:///{tmp_path}/state.db")
    effects = applied(store)
    with (
        pubsubkit.open_broker(url, pm=pm) as broker,
        pubsubkit.open_broker(url, codec=pubsubkit.Codec(bad_types)) as bad,
    ):
        listener = broker.listener("poison", store=store, retry=pubsubkit.RetryPolicy(attempts=2, initial=0.01))

        @listener.on(Ticked)
        def apply(event: Ticked, msg: pubsubkit.Message) -> None:
            with msg.unit_of_work() as uow:
                uow.insert(effects, Applied(pubsubkit.new_id(), msg.id, "poison", event.seq, os.getpid()))

        listener.start()
        assert listener.wait_ready(60)
        emitter = broker.emitter()
        emitter.emit_many([(Ticked(i), f"k{i}") for i in range(10)])
        bad.emitter().emit(BadTicked("not a number"), key="k0")
        emitter.emit(Unknown("nobody handles me"), key="k1")
        dup = emitter.envelope(Ticked(10), key="k2")
        emitter.publish([dup, dup])  # one message delivered twice
        emitter.emit_many([(Ticked(i), f"k{i}") for i in range(11, 20)])

        def value(metric: str, **labels: str) -> float:
            return registry.get_sample_value(metric, {"group": "poison", **labels}) or 0.0

        wait_until(lambda: len(effects.find(group="poison")) >= 20, WAIT, "20 effects")
        wait_until(lambda: value("pubsubkit_dead_lettered_total", reason="poison") >= 1, WAIT, "the dead letter")
        if BROKER not in ROUTES_BY_NAME:
            skipped = lambda: value("pubsubkit_handled_total", name="faultUnknown", outcome="skipped")  # noqa: E731
            wait_until(lambda: skipped() >= 1, WAIT, "the unknown message to be skipped")
        listener.close()
    per_seq = Counter(e.seq for e in effects.find(group="poison"))
    store.close()
    note = "1 dead-lettered, 1 skipped; counted in metrics"
    if BROKER in ROUTES_BY_NAME:
        note = "1 dead-lettered (counted in metrics); the unknown type is not routed to a group bound by name"
    poison_row = Row("poison + unknown type on the bus", 22, len(per_seq), 20 - len(per_seq), 0, note)
    dup_row = Row("duplicate delivery", 2, per_seq[10], 0, per_seq[10] - 1, "one message published twice")
    table += [poison_row, dup_row]
    assert sorted(per_seq) == list(range(20))
    assert set(per_seq.values()) == {1}
