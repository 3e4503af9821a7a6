"""pytest plugin entry point of :mod:`pubsubkit.testing` (registered as ``pytest11``)."""

from __future__ import annotations

import os

import pytest

SIZE_ENV = "PUBSUBKIT_CONFORMANCE_SIZE"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pubsubkit")
    group.addoption(
        "--conformance-size",
        choices=("quick", "full"),
        default=os.environ.get(SIZE_ENV, "quick"),
        help="run the conformance cases at their quick (CI) or full sizes",
    )
