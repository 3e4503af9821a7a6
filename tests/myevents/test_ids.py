"""Entity ids in the form the original Go services accept (a MongoDB ObjectId's hex)."""

from __future__ import annotations

import multiprocessing
import time

from myevents.ids import OBJECT_ID, object_id


def _ids(n: int) -> list[str]:
    return [object_id() for _ in range(n)]


def test_an_id_is_24_hex_digits_starting_with_the_second_it_was_made() -> None:
    before = int(time.time())
    made = object_id()
    after = int(time.time())
    assert OBJECT_ID.fullmatch(made), made
    assert before <= int(made[:8], 16) <= after


def test_ids_are_unique_in_a_process_and_across_processes() -> None:
    here = _ids(50_000)
    assert len(set(here)) == len(here)
    assert len({i[8:18] for i in here}) == 1  # one random part per process
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        there = [i for batch in pool.map(_ids, [20_000, 20_000]) for i in batch]
    assert len(set(here) | set(there)) == len(here) + len(there)
    assert len({i[8:18] for i in there}) == 2  # a forked child draws its own


def test_ids_of_one_second_follow_the_counter() -> None:
    a, b = object_id(), object_id()
    if a[:8] == b[:8]:
        assert (int(b[18:], 16) - int(a[18:], 16)) % (1 << 24) == 1
