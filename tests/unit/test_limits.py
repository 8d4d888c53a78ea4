"""Check-and-reserve of the lab's limits, the per-client backlog triage, and RPC reply checks (pure)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.limits import LimitReached, Slots
from rabbit.rpc import NOT_AN_INTEGER, expiration_for, reply_problem
from web.batching import triage


def test_slots_count_what_is_still_starting():
    """The race of issue 15: every request checks while the others are still starting."""
    slots = Slots(20, "at most {limit}")
    running: list[int] = []
    refused: list[LimitReached] = []
    barrier = threading.Barrier(100)

    def start_one(i: int) -> None:
        barrier.wait()
        try:
            with slots.reserve(lambda: len(running)):
                time.sleep(0.01)  # a tap's connection being opened: the others check meanwhile
                running.append(i)
        except LimitReached as exc:
            refused.append(exc)

    threads = [threading.Thread(target=start_one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(running) == 20 and len(refused) == 80
    assert refused[0].message == "at most 20" and refused[0].details == {"limit": 20}
    assert slots.starting == 0


def test_a_failed_start_gives_its_slot_back():
    slots = Slots(1, "full")
    with pytest.raises(RuntimeError), slots.reserve(lambda: 0):
        raise RuntimeError("the broker refused")
    with slots.reserve(lambda: 0):
        pass
    assert slots.starting == 0


def test_hold_keeps_a_slot_for_the_block():
    slots = Slots(2, "busy", code="RESOURCE_LOCKED")
    with slots.hold(), slots.hold():
        with pytest.raises(LimitReached) as info, slots.hold():
            pass
        assert info.value.code == "RESOURCE_LOCKED"
    with slots.hold():
        assert slots.held == 1
    assert slots.held == 0


def test_triage_skips_then_drops():
    out = triage(
        {"a": (0, 0), "b": (9, 100), "c": (300, 1000), "d": (2, 20_000_000)},
        skip_packets=8,
        drop_packets=256,
        drop_bytes=16_000_000,
    )
    assert out.ready == ["a"] and out.lagging == ["b"] and sorted(out.drop) == ["c", "d"]


@given(st.dictionaries(st.text(min_size=1), st.tuples(st.integers(0, 1000), st.integers(0, 10**8))))
def test_triage_puts_each_client_in_exactly_one_place(backlogs):
    out = triage(backlogs, skip_packets=8, drop_packets=256, drop_bytes=10**7)
    assert sorted(out.ready + out.lagging + out.drop) == sorted(backlogs)
    for sid in out.drop:
        assert backlogs[sid][0] > 256 or backlogs[sid][1] > 10**7


@pytest.mark.parametrize("text", ["0", "1", "832040", "-5", " 55\n", "3" * 20899])
def test_exact_integers_are_results(text):
    assert reply_problem(text) is None


@pytest.mark.parametrize("text", ["4.346655768693743e+208", "Infinity", "-Infinity", "NaN", "1.5", "1e3", "12.0"])
def test_floating_point_replies_are_flagged(text):
    assert reply_problem(text) == NOT_AN_INTEGER


@pytest.mark.parametrize("text", ["", "hello", "\uff10\uff11\uff12", "12abc", "[1]"])
def test_other_replies_are_flagged_too(text):
    assert reply_problem(text) is not None and reply_problem(text) != NOT_AN_INTEGER


@pytest.mark.parametrize(("timeout_s", "expected"), [(5, "5000"), (1.5, "1500"), (0.0001, "1"), (0.3, "300")])
def test_expiration_is_the_timeout_in_whole_milliseconds(timeout_s, expected):
    assert expiration_for(timeout_s) == expected


def test_rounded_integers_from_doubles_are_flagged_when_n_is_known():
    """Node prints fib(80) from a double as 23416728348467684 (exact 23416728348467685): not a result."""
    assert reply_problem("23416728348467685", 80) is None
    assert reply_problem("23416728348467684", 80) == NOT_AN_INTEGER
    assert reply_problem("23416728348467684") is None  # without n there is nothing to compare with
    assert reply_problem("56", 10) == "wrong reply: fib(10) is 55"
    assert reply_problem("1" * 5000, 100_000) is None  # beyond what a double holds: not recomputed


def test_every_fib_a_double_holds_exactly_passes():
    from rabbit.fib import fib

    a, b = 0.0, 1.0
    for n in range(1477):
        exact = fib(n)
        assert reply_problem(str(exact), n) is None
        if n < 79:
            assert int(a) == exact  # doubles are exact below fib(79), as the check assumes
        a, b = b, a + b
