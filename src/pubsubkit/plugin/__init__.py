"""Everything a plugin author needs: hooks, specs, capability records, the backend interfaces, the observers.

Applications import :mod:`pubsubkit`; plugins import this package. A plugin is a module (or object) with
functions marked :data:`hookimpl`, found through the entry-point group ``pubsubkit``:

.. code-block:: toml

    [project.entry-points.pubsubkit]
    queue = "pubsubkit_queue"

**A backend** registers a spec for its URL schemes; its factory builds the :class:`Transport` (messages) or
:class:`Store` (state) that does the work, so that no message goes through pluggy::

    from pubsubkit.plugin import BrokerCapabilities, BrokerSpec, hookimpl

    @hookimpl
    def pubsubkit_register_brokers(register):
        register(BrokerSpec(
            schemes=("queue",),
            factory=QueueTransport,  # QueueTransport(url, **options) -> a Transport
            capabilities=BrokerCapabilities(ordered=False, persistent=False, multi_process=False),
            distribution="pubsubkit-queue",
        ))

A :class:`Transport` publishes (returning only once the broker confirmed) and opens :class:`Consumer`\\ s;
a consumer hands out :class:`Delivery` objects, each its own until acked, released or dead-lettered. The
listener runtime (decoding, dispatch, retries, dead letters, per-key order, the inbox) is shared by every
backend. Read options with :mod:`pubsubkit.options` into a frozen record (a wrong one is refused naming
the valid ones); run :mod:`pubsubkit.testing`'s conformance suite against a real server.

**An observer** implements observation hooks (:func:`~pubsubkit.plugin.hookspecs.pubsubkit_handled`...),
called as things happen with an :class:`Outcome`; **a middleware** returns a wrapper from
:func:`~pubsubkit.plugin.hookspecs.pubsubkit_handler_middleware` or
:func:`~pubsubkit.plugin.hookspecs.pubsubkit_publish_middleware`, composed once per listener or emitter and
run around every handler call or publish (it sees and may add headers)::

    @hookimpl
    def pubsubkit_publish_middleware(url):
        def wrap(publish_next):
            return lambda envelopes: publish_next([e.with_headers(x_origin="billing") for e in envelopes])
        return wrap

The runtime reaches plugins only through an :class:`Observers`, built once from the manager
(:func:`get_plugin_manager`). docs/writing-a-plugin.md builds a whole backend; docs/hooks.md lists the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pubsubkit.lazy import lazy_attributes

if TYPE_CHECKING:
    from pubsubkit.envelope import add_header_stamp as add_header_stamp
    from pubsubkit.envelope import remove_header_stamp as remove_header_stamp
    from pubsubkit.plugin.hookspecs import NAME as NAME
    from pubsubkit.plugin.hookspecs import hookimpl as hookimpl
    from pubsubkit.plugin.hookspecs import hookspec as hookspec
    from pubsubkit.plugin.manager import Backends as Backends
    from pubsubkit.plugin.manager import get_plugin_manager as get_plugin_manager
    from pubsubkit.plugin.observers import NO_OBSERVERS as NO_OBSERVERS
    from pubsubkit.plugin.observers import AsyncHandlerCall as AsyncHandlerCall
    from pubsubkit.plugin.observers import HandlerCall as HandlerCall
    from pubsubkit.plugin.observers import HandlerMiddleware as HandlerMiddleware
    from pubsubkit.plugin.observers import Observers as Observers
    from pubsubkit.plugin.observers import Outcome as Outcome
    from pubsubkit.plugin.observers import PublishCall as PublishCall
    from pubsubkit.plugin.observers import PublishMiddleware as PublishMiddleware
    from pubsubkit.plugin.specs import BrokerSpec as BrokerSpec
    from pubsubkit.plugin.specs import StoreSpec as StoreSpec
    from pubsubkit.store import Store as Store
    from pubsubkit.store import StoreCapabilities as StoreCapabilities
    from pubsubkit.transport import BrokerCapabilities as BrokerCapabilities
    from pubsubkit.transport import Channel as Channel
    from pubsubkit.transport import Consumer as Consumer
    from pubsubkit.transport import DeadLetter as DeadLetter
    from pubsubkit.transport import Delivery as Delivery
    from pubsubkit.transport import Transport as Transport
    from pubsubkit.urls import redact as redact
    from pubsubkit.urls import scheme_of as scheme_of

#: Where each name of the plugin API is defined: the one list (``__all__`` is made from it, and a test checks
#: that the imports above, for type checkers, name the same). Imported on first use.
_LAZY: dict[str, str] = {
    "add_header_stamp": "pubsubkit.envelope",
    "remove_header_stamp": "pubsubkit.envelope",
    "NAME": "pubsubkit.plugin.hookspecs",
    "hookimpl": "pubsubkit.plugin.hookspecs",
    "hookspec": "pubsubkit.plugin.hookspecs",
    "Backends": "pubsubkit.plugin.manager",
    "get_plugin_manager": "pubsubkit.plugin.manager",
    "NO_OBSERVERS": "pubsubkit.plugin.observers",
    "AsyncHandlerCall": "pubsubkit.plugin.observers",
    "HandlerCall": "pubsubkit.plugin.observers",
    "HandlerMiddleware": "pubsubkit.plugin.observers",
    "Observers": "pubsubkit.plugin.observers",
    "Outcome": "pubsubkit.plugin.observers",
    "PublishCall": "pubsubkit.plugin.observers",
    "PublishMiddleware": "pubsubkit.plugin.observers",
    "BrokerSpec": "pubsubkit.plugin.specs",
    "StoreSpec": "pubsubkit.plugin.specs",
    "Store": "pubsubkit.store",
    "StoreCapabilities": "pubsubkit.store",
    "BrokerCapabilities": "pubsubkit.transport",
    "Channel": "pubsubkit.transport",
    "Consumer": "pubsubkit.transport",
    "DeadLetter": "pubsubkit.transport",
    "Delivery": "pubsubkit.transport",
    "Transport": "pubsubkit.transport",
    "redact": "pubsubkit.urls",
    "scheme_of": "pubsubkit.urls",
}

__all__ = sorted(_LAZY)  # made from the one list above

if not TYPE_CHECKING:
    __getattr__ = lazy_attributes(__name__, globals(), _LAZY, submodules=True)
