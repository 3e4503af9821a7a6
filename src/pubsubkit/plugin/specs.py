"""What a plugin registers: one spec per backend, with the URL schemes it serves and what it can do."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from pubsubkit.store import StoreCapabilities
from pubsubkit.transport import BrokerCapabilities

if TYPE_CHECKING:
    from pubsubkit.store import Store
    from pubsubkit.transport import Transport

__all__ = ["BrokerSpec", "StoreSpec"]


@attrs.frozen
class BrokerSpec:
    """A message backend: the URL schemes it serves and the factory building its transport.

    :ivar schemes: URL schemes, lower case (``("amqp", "amqps")``).
    :ivar factory: ``factory(url, **options)`` returns a :class:`~pubsubkit.transport.Transport`.
    :ivar capabilities: what the backend can do; docs, the CLI and the conformance suite read it.
    :ivar distribution: the distribution to install for it (named in the error when it is missing).
    :ivar description: one line for ``pubsubkit backends``.
    """

    schemes: tuple[str, ...]
    factory: Callable[..., Transport]
    capabilities: BrokerCapabilities
    distribution: str
    description: str = ""


@attrs.frozen
class StoreSpec:
    """A repository backend: the URL schemes it serves and the factory building its store.

    :ivar factory: ``factory(url, codec=..., **options)`` returns a :class:`~pubsubkit.store.Store`.
    """

    schemes: tuple[str, ...]
    factory: Callable[..., Store]
    distribution: str
    description: str = ""
    capabilities: StoreCapabilities = attrs.field(factory=StoreCapabilities)
