"""pubsubkit.options: the one reader of backends' option values."""

from __future__ import annotations

import pytest

from pubsubkit import ConfigError
from pubsubkit.options import flag, number

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
