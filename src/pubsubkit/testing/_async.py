"""The handler cases again with ``async def`` handlers (``test_async_*``): the same checks, every handler given
to the listener as a coroutine function (:func:`~pubsubkit.testing._base.as_coroutine`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pubsubkit.testing._base import Listeners, MessagingFixtures
from pubsubkit.testing._batches import BatchCases
from pubsubkit.testing._delivery import DeliveryCases
from pubsubkit.testing._failures import FailureCases
from pubsubkit.testing._lifecycle import LifecycleCases

__all__ = ["AsyncHandlerCases"]


def _with_async_handlers(case: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(case)
    def test(self: Any, *args: Any, **kwargs: Any) -> None:
        listeners = kwargs.get("listeners")
        assert isinstance(listeners, Listeners), f"{case.__name__} takes no listeners fixture: nothing is async"
        listeners.kind = "async"
        case(self, *args, **kwargs)

    test.__name__ = case.__name__.replace("test_", "test_async_", 1)
    test.__doc__ = f"{case.__doc__ or case.__name__} (with async def handlers)"
    return test


class AsyncHandlerCases(MessagingFixtures):
    test_async_01_publish_subscribe = _with_async_handlers(DeliveryCases.test_01_publish_subscribe)
    test_async_04_redelivery_on_failure = _with_async_handlers(FailureCases.test_04_redelivery_on_failure)
    test_async_09_ordering_per_key = _with_async_handlers(DeliveryCases.test_09_ordering_per_key)
    test_async_16_retry_policy = _with_async_handlers(FailureCases.test_16_retry_policy)
    test_async_17_dead_letter = _with_async_handlers(FailureCases.test_17_dead_letter)
    test_async_19_idempotent_consumer = _with_async_handlers(FailureCases.test_19_idempotent_consumer)
    test_async_20_graceful_shutdown = _with_async_handlers(LifecycleCases.test_20_graceful_shutdown)
    test_async_32_batch_handler = _with_async_handlers(BatchCases.test_32_batch_handler)
    test_async_33_batch_retries_and_poison = _with_async_handlers(BatchCases.test_33_batch_retries_and_poison)
