"""The messaging cases (docs/conformance.md), for every message backend. A backend's test module subclasses the
suite and gives its URL::

    class TestSqliteMessaging(MessagingSuite):
        @pytest.fixture
        def broker_url(self, tmp_path):
            return f"sqlite:///{tmp_path}/bus.db"

Optional fixtures (see :class:`~pubsubkit.testing._base.MessagingFixtures`): ``server_control`` for the
reconnect cases 14 and 21, ``store_url`` for the inbox of cases 19 and 30, ``publish_undecodable`` for a raw poison
message in case 18. A case that needs a capability the backend lacks is skipped with the capability named.
"""

from __future__ import annotations

from pubsubkit.testing._arguments import ArgumentCases
from pubsubkit.testing._async import AsyncHandlerCases
from pubsubkit.testing._batches import BatchCases
from pubsubkit.testing._dead_letters import DeadLetterCommandCases
from pubsubkit.testing._delivery import DeliveryCases
from pubsubkit.testing._failures import FailureCases
from pubsubkit.testing._lag import LagCases
from pubsubkit.testing._lifecycle import LifecycleCases
from pubsubkit.testing._middleware import MiddlewareCases
from pubsubkit.testing._replay import ReplayCases

__all__ = ["MessagingSuite"]


class MessagingSuite(
    DeliveryCases,
    FailureCases,
    LifecycleCases,
    MiddlewareCases,
    ArgumentCases,
    DeadLetterCommandCases,
    ReplayCases,
    LagCases,
    BatchCases,
    AsyncHandlerCases,
):
    """Subclass with a ``broker_url`` fixture; the cases run against that broker."""
