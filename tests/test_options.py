"""pubsubkit.options: the one reader of backends' options and their values; the built-ins refuse unknown ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

import pubsubkit
from pubsubkit import ConfigError
from pubsubkit.options import flag, number, one_of, option, optional, read_options, split_options, text, whole

FLAGS = [(True, True), ("yes", True), (" ON ", True), ("0", False), ("off", False)]


@pytest.mark.parametrize(("value", "expected"), FLAGS)
def test_flag(value: object, expected: bool) -> None:
    assert flag("x", "opt", value) is expected


def test_flag_refuses_anything_else() -> None:
    with pytest.raises(ConfigError, match=r"x option opt='maybe': use true or false"):
        flag("x", "opt", "maybe")


def test_number() -> None:
    assert number("x", "n", "3", int, 1) == 3
    assert number("x", "n", "0.5", float, 0.0, 1.0) == 0.5
    with pytest.raises(ConfigError, match=r"x option n='three': not a whole number"):
        number("x", "n", "three", int)
    with pytest.raises(ConfigError, match=r"x option n='0': must be at least 1"):
        number("x", "n", "0", int, 1)
    with pytest.raises(ConfigError, match=r"x option n='25': must be between 0 and 20"):
        number("x", "n", "25", int, 0, 20)
    with pytest.raises(ConfigError, match=r"x option n=7.5: must be at most 5"):
        number("x", "n", 7.5, float, maximum=5)


def test_read_options_merges_query_and_keywords() -> None:
    @attrs.frozen
    class Demo:
        host: str
        size: int = option(3, parse=whole(1))
        mode: str = option("fast", parse=one_of("fast", "safe"))
        label: str | None = option(None, parse=optional(text))

    got = read_options("x", Demo, "size=5&mode=SAFE&label=", {"size": "7"}, fields={"host": "h"})
    assert got == Demo(host="h", size=7, mode="safe", label=None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        got.size = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"x option mode='slow': use fast or safe"):
        read_options("x", Demo, "mode=slow", {}, fields={"host": "h"})
    with pytest.raises(ConfigError, match=r"^unknown x options 'colour', 'sise': use one of label, mode, size$"):
        read_options("x", Demo, "sise=1", {"colour": "red"}, fields={"host": "h"})


def test_split_options_passes_the_drivers_names_through() -> None:
    split = split_options(
        "x", ("size",), "size=1&a.b=2&c.d=3", {"c.d": 4}, passthrough=lambda k: "." in k, driver="a property (a.b)"
    )
    assert (split.ours, split.query_rest, split.keyword_rest) == (
        {"size": "1"},
        [("a.b", "2"), ("c.d", "3")],
        {"c.d": 4},
    )
    assert split.rest == {"a.b": "2", "c.d": 4}
    with pytest.raises(ConfigError, match=r"^unknown x option 'sise': use one of size, or a property \(a\.b\)$"):
        split_options("x", ("size",), "sise=1", {}, passthrough=lambda k: "." in k, driver="a property (a.b)")
    with pytest.raises(ConfigError, match=r"unknown x option 'e\.f'"):
        split_options("x", ("size",), "", {"e.f": 1}, passthrough=lambda k: "." in k, keyword_passthrough=False)


@pytest.mark.parametrize(
    ("url", "options", "bad", "valid"),
    [
        ("memory://opts", {"colour": "blue"}, "colour", "lease"),
        ("memory://opts?leese=1", {}, "leese", "lease"),
        ("sqlite:///{tmp}/o.db", {"colour": "blue"}, "colour", "lease, poll, retention, synchronous"),
        ("sqlite:///{tmp}/o.db?pol=1", {}, "pol", "lease, poll, retention, synchronous"),
    ],
)
def test_builtin_backends_refuse_unknown_options(
    url: str, options: dict[str, Any], bad: str, valid: str, tmp_path: Path
) -> None:
    url = url.replace("/{tmp}", str(tmp_path))
    message = rf"^unknown (memory|sqlite) option '{bad}': use one of {valid}$"
    with pytest.raises(ConfigError, match=message):
        pubsubkit.open_broker(url, **options)
    with pytest.raises(ConfigError, match=message):
        pubsubkit.open_store(url, **options)


def test_builtin_backends_read_their_options(tmp_path: Path) -> None:
    with pubsubkit.open_broker(f"sqlite:///{tmp_path}/o.db?lease=5&synchronous=full", poll="0.5") as broker:
        options = broker.transport.options  # type: ignore[attr-defined]
        assert (options.lease, options.poll, options.synchronous) == (5.0, 0.5, "FULL")
    with pytest.raises(ConfigError, match=r"sqlite option synchronous='SOMETIMES': use NORMAL or FULL"):
        pubsubkit.open_broker(f"sqlite:///{tmp_path}/o.db?synchronous=sometimes")
    with pytest.raises(ConfigError, match=r"sqlite option lease='soon': not a number"):
        pubsubkit.open_broker(f"sqlite:///{tmp_path}/o.db", lease="soon")
    with pubsubkit.open_broker("memory://opts?lease=2") as broker:
        assert broker.transport.consumer("g", None).lease_seconds == 2.0  # type: ignore[attr-defined]
