"""A rebalance that takes a partition from a member lets the member's work in flight finish first."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from kafka_support import kafka_url

from pubsubkit.api import open_broker
from pubsubkit.testing import Collector, EventKit, unique_name


def test_a_member_joining_mid_handling_does_not_make_work_in_flight_run_twice(kafka_bootstrap: str) -> None:
    """Slow handlers are running on every partition when a second member joins: the partitions that move are
    given up only once those handlers returned and their offsets are committed, so no message runs twice."""
    kit = EventKit()
    ping = kit.event_type()
    url = kafka_url(kafka_bootstrap, unique_name("t"), "partitions=4")
    first, second = open_broker(url, codec=kit.codec), open_broker(url, codec=kit.codec)
    started = threading.Event()

    def slow(event: Any, msg: Any) -> None:
        started.set()
        time.sleep(0.3)

    seen = Collector(fail=slow)
    group = kit.name("g")
    a = first.listener(group, concurrency=4, max_in_flight=8)
    a.add_handler(ping, seen)
    b = second.listener(group, concurrency=4, max_in_flight=8)
    b.add_handler(ping, seen)
    try:
        a.start()
        assert a.wait_ready(60)
        ids = [env.id for env in first.emitter().emit_many([(ping(n=i), f"k{i}") for i in range(40)])]
        assert started.wait(60), "the first member never started handling"
        b.start()  # joins while the first member has handlers running on every partition
        seen.wait_for(ids, timeout=120)
    finally:
        a.close()
        b.close()
        first.close()
        second.close()
    twice = {i: c for i, c in Counter(seen.ids()).items() if c > 1}
    assert not twice, f"{len(twice)} messages handled twice across the rebalance"
