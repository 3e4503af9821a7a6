"""Where ``async def`` handlers run, and the checks of handler kinds.

A listener with an ``async def`` handler runs its worker lanes as tasks on the event loop of its
:class:`CoroutineRunner` (the application's, or one of the listener's own; see :mod:`pubsubkit.async_lanes`),
so that each message is settled only after its coroutine finished, exactly as with a sync handler. A handler
whose kind cannot be run so (an async generator) is refused when it is added, and a sync handler that returns
an awaitable fails its message with a :class:`~pubsubkit.errors.ConfigError` naming the fix instead of leaving
a coroutine never awaited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pubsubkit.errors import ConfigError

__all__ = ["CoroutineRunner", "Offload", "in_own_thread", "is_async_handler", "refuse_unrunnable"]

T = TypeVar("T")


class Offload:
    """Blocking calls awaited from an event loop, in ``workers`` threads of their own.

    Not the loop's default executor (``asyncio.to_thread``): the application awaits that one too, and a handler
    waiting in one of its threads for a coroutine that itself awaits ``to_thread`` would wait for a thread
    that never comes once the pool is full. Each call runs in a copy of the caller's context, as with
    ``to_thread``.
    """

    def __init__(self, name: str, workers: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in one of the threads; the caller's task awaits its result."""
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(ctx.run, fn, *args))

    def close(self) -> None:
        """Take no more calls; the threads end once the calls they run return."""
        self._pool.shutdown(wait=False)


async def in_own_thread(fn: Callable[[], T], name: str) -> T:
    """Await ``fn()`` run in a new thread called ``name`` (for calls that last as long as a listener, which
    must not hold a thread of the loop's default executor for that long; see :class:`Offload`)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, failed: bool) -> None:
        if not future.done():
            future.set_exception(result) if failed else future.set_result(result)

    def run() -> None:
        result: Any
        try:
            result, failed = ctx.run(fn), False
        except BaseException as exc:  # handed to the awaiting task, which re-raises it
            result, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits any more
            loop.call_soon_threadsafe(settle, result, failed)

    ctx = contextvars.copy_context()
    threading.Thread(target=run, name=name, daemon=True).start()
    return await future


def _target(fn: object) -> object:
    """What ``fn`` runs: the function under partials and bound methods, or a callable object's ``__call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if not inspect.isfunction(fn) and not inspect.ismethod(fn) and callable(fn):
        call = getattr(type(fn), "__call__", None)  # noqa: B004 - the method of a callable object
        if call is not None:
            return call
    return fn


def is_async_handler(fn: object) -> bool:
    """Whether ``fn`` is an ``async def`` function (also through partials, methods and ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(_target(fn))


def refuse_unrunnable(fn: object) -> None:
    """Raise TypeError for a handler the listener cannot run to completion: an async generator function."""
    if inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(_target(fn)):
        name = getattr(fn, "__name__", None) or type(fn).__name__
        raise TypeError(
            f"handler {name} is an async generator: a listener runs a handler to its end, so define it as"
            f" async def {name}(event, msg) (await, do not yield) or def {name}(event, msg)"
        )


class CoroutineRunner:
    """Where the coroutines of ``async def`` handlers run: the application's event loop when the listener was
    started from one (:meth:`bind`, by ``await listener.serve()`` or ``async with listener``), so that handlers
    can use what the application made on it (sessions, pools); otherwise an event loop on a thread of its own,
    started at the first coroutine and stopped by :meth:`close`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bound = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the coroutines on ``loop`` (the caller's, which must keep running while the listener does)."""
        with self._lock:
            if self._loop is None:
                self._loop, self._bound = loop, True

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the coroutines run on: the bound one, or this runner's own (started here if need be)."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.close()

                self._thread = threading.Thread(target=run, name=self.name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Run ``awaitable`` on the loop and wait for its result (or raise its exception) in this thread."""
        loop = self.loop()
        if not asyncio.iscoroutine(awaitable):
            awaitable = _awaited(awaitable)
        return asyncio.run_coroutine_threadsafe(awaitable, loop).result()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A sync callable that runs the coroutine of ``fn(*args)`` to its end on this runner."""

        @functools.wraps(fn)
        def call(*args: Any) -> Any:
            return self.run(fn(*args))

        call.__pubsubkit_async__ = fn  # type: ignore[attr-defined]
        return call

    def close(self) -> None:
        """Stop the loop once the coroutines submitted so far are done (the lanes waited for them)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            bound, self._bound = self._bound, False
        if loop is not None and thread is not None and not bound:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def not_awaited(fn: object, result: object) -> ConfigError:
    """The error of a sync handler that returned an awaitable (closed, so that it warns of nothing)."""
    close = getattr(result, "close", None)
    if callable(close):
        close()
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return ConfigError(
        f"handler {name} returned {type(result).__name__}, which the listener would never await: define it with"
        f" async def {name}(event, msg), or await inside it and return nothing"
    )
