"""The conformance suite every pubsubkit backend runs, shipped as a pytest plugin, and helpers for testing a
service built on pubsubkit (:func:`message_for`, :func:`run_until_idle`, :func:`assert_contract_kept`;
docs/testing.md).

A backend's tests subclass the suite classes and provide a URL fixture; see docs/writing-a-plugin.md::

    from pubsubkit.testing import MessagingSuite, RepositorySuite

    class TestSqliteMessaging(MessagingSuite):
        @pytest.fixture
        def broker_url(self, tmp_path):
            return f"sqlite:///{tmp_path}/bus.db"

Run the cases at the full sizes of docs/conformance.md with ``pytest --conformance-size full`` (or
``PUBSUBKIT_CONFORMANCE_SIZE=full``); the default, ``quick``, shrinks the largest ones for CI.
"""

import pytest

# Before the suite modules are imported, so that their asserts explain failures like a test module's do.
pytest.register_assert_rewrite(
    "pubsubkit.testing._arguments",
    "pubsubkit.testing._dead_letters",
    "pubsubkit.testing._delivery",
    "pubsubkit.testing._failures",
    "pubsubkit.testing._lag",
    "pubsubkit.testing._lifecycle",
    "pubsubkit.testing._middleware",
    "pubsubkit.testing.repository",
)

from pubsubkit.testing.helpers import (  # noqa: E402
    Collector,
    EventKit,
    InboxEffects,
    ServerControl,
    Sizes,
    require_server,
    unique_name,
    wait_until,
)
from pubsubkit.testing.messaging import MessagingSuite  # noqa: E402
from pubsubkit.testing.repository import RepositorySuite  # noqa: E402
from pubsubkit.testing.service import (  # noqa: E402
    assert_contract_kept,
    message_for,
    redelivery_of,
    run_until_idle,
)

__all__ = [
    "Collector",
    "EventKit",
    "InboxEffects",
    "MessagingSuite",
    "RepositorySuite",
    "ServerControl",
    "Sizes",
    "assert_contract_kept",
    "message_for",
    "redelivery_of",
    "require_server",
    "run_until_idle",
    "unique_name",
    "wait_until",
]
