"""``MYEVENTS_READY_MAX_LAG``: the booking service's ``/ready`` turns 503 while too many events wait for its group."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from falcon import testing
from myevents_support import make_config

import pubsubkit
from myevents import booking, config
from myevents.booking.app import lag_probe


class FakeListener:
    group = "booking"
    lag: int | None = None


def test_the_lag_probe_fails_only_past_the_bound() -> None:
    listener: Any = FakeListener()
    probe = lag_probe(listener, 5)
    probe()  # no reading yet
    listener.lag = 5
    probe()
    listener.lag = 6
    with pytest.raises(RuntimeError, match=r"6 events wait for group booking \(MYEVENTS_READY_MAX_LAG=5\)"):
        probe()


def test_the_bound_is_read_from_the_environment_and_checked() -> None:
    env = {"MYEVENTS_JWT_SECRET": "x" * 32}
    assert config.load("booking", env=env).ready_max_lag is None
    assert config.load("booking", env={**env, "MYEVENTS_READY_MAX_LAG": "1000"}).ready_max_lag == 1000
    with pytest.raises(pubsubkit.ConfigError, match="MYEVENTS_READY_MAX_LAG must be a number of events"):
        config.load("booking", env={**env, "MYEVENTS_READY_MAX_LAG": "lots"})


@pytest.mark.parametrize("bound", [None, 10])
def test_the_booking_service_checks_the_lag_only_with_a_bound(bound: int | None) -> None:
    name = pubsubkit.new_id()
    cfg = attrs.evolve(make_config("booking", f"memory://bus-{name}", f"memory://b-{name}"), ready_max_lag=bound)
    svc = booking.create_service(cfg).start()
    try:
        checks = testing.TestClient(svc.app).simulate_get("/ready").json["checks"]
        assert ("lag" in checks) == (bound is not None), checks
    finally:
        svc.close()
