"""The async emitter: confirmed emits that never block the event loop (memory:// and SQLite)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import attrs
import pytest

import pubsubkit

EVENTS = 10_000


@pubsubkit.event("asyncEmitted")
@attrs.frozen
class Emitted:
    n: int


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://aemit-{pubsubkit.new_id()}"
    return f"sqlite:///{tmp_path}/bus.db"


async def heartbeat(stop: asyncio.Event, late: list[float]) -> None:
    """Wake every 10 ms and note how late each wake-up was."""
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.01)
        late.append(time.monotonic() - before - 0.01)


def test_async_emits_are_confirmed_and_the_loop_keeps_beating(url: str) -> None:
    """10,000 events emitted by 100 concurrent tasks all reach the log; the heartbeat task on the same loop
    is measured (reported, not asserted: no timing assertion in a test)."""

    async def main() -> tuple[list[pubsubkit.Envelope], list[float]]:
        with pubsubkit.open_broker(url) as broker:
            emitter = broker.async_emitter()
            stop, late = asyncio.Event(), list[float]()
            beat = asyncio.create_task(heartbeat(stop, late))

            async def one_task(first: int) -> list[pubsubkit.Envelope]:
                return [await emitter.emit(Emitted(n=i)) for i in range(first, first + EVENTS // 100)]

            chunks = await asyncio.gather(*(one_task(i) for i in range(0, EVENTS, EVENTS // 100)))
            sent = [e for chunk in chunks for e in chunk]
            sent += await emitter.emit_many([(Emitted(n=-1), "k"), Emitted(n=-2)])
            stop.set()
            await beat
            await emitter.aclose()
            with pytest.raises(pubsubkit.Closed):
                await emitter.emit(Emitted(n=0))
            if url.startswith("memory"):
                assert broker.transport.backlog("nobody") == EVENTS + 2  # type: ignore[attr-defined]
            return sent, late

    sent, late = asyncio.run(main())
    assert len({e.id for e in sent}) == EVENTS + 2
    assert sent[-2].key == "k"
    print(f"{url.split(':')[0]}: heartbeat late at most {max(late) * 1000:.1f} ms over {len(late)} beats")


def test_a_bad_event_raises_at_the_call_and_sends_nothing() -> None:
    async def main() -> None:
        with pubsubkit.open_broker(f"memory://aemit-{pubsubkit.new_id()}") as broker:
            emitter = broker.async_emitter()
            with pytest.raises(TypeError):
                await emitter.emit(Emitted(n=1), key=5)  # type: ignore[arg-type]
            assert broker.transport.backlog("nobody") == 0  # type: ignore[attr-defined]
            await emitter.aclose()

    asyncio.run(main())
