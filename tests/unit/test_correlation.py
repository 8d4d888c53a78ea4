"""The pending-call book: every reply is answered, duplicate, late or unknown; deadlines expire in order."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rabbit.correlation import ANSWERED, DUPLICATE, LATE, UNKNOWN, PendingCalls


def book(**kwargs) -> PendingCalls:
    counter = itertools.count(1)
    return PendingCalls(make_id=lambda: f"c{next(counter)}", **kwargs)


def test_a_reply_answers_its_call_with_latency_and_context():
    calls = book()
    call = calls.add(now=10.0, timeout_s=5, context={"n": 30})
    assert call.correlation_id == "c1" and "c1" in calls and len(calls) == 1
    outcome = calls.on_reply("c1", now=10.25)
    assert outcome.kind == ANSWERED and not outcome.is_orphan
    assert outcome.call is call and outcome.call.context == {"n": 30}
    assert outcome.latency_ms == pytest.approx(250.0)
    assert len(calls) == 0 and "c1" not in calls


def test_a_second_reply_is_a_duplicate_orphan():
    calls = book()
    calls.add(0.0, 5)
    calls.on_reply("c1", 0.1)
    again = calls.on_reply("c1", 0.3)
    assert again.kind == DUPLICATE and again.is_orphan and again.call is None
    assert again.latency_ms == pytest.approx(300.0)
    assert calls.on_reply("c1", 0.4).kind == DUPLICATE


def test_unknown_and_missing_ids_are_unknown_orphans():
    calls = book()
    calls.add(0.0, 5)
    assert calls.on_reply("nope", 1.0).kind == UNKNOWN
    assert calls.on_reply(None, 1.0).kind == UNKNOWN
    assert calls.on_reply("", 1.0).kind == UNKNOWN
    assert len(calls) == 1  # the real call still waits


def test_expire_returns_only_calls_past_their_deadline_in_order():
    calls = book()
    calls.add(0.0, 3)  # c1 deadline 3
    calls.add(0.0, 1)  # c2 deadline 1
    calls.add(0.0, 2)  # c3 deadline 2
    assert calls.next_deadline() == 1
    assert calls.expire(0.99) == []
    assert [c.correlation_id for c in calls.expire(2.0)] == ["c2", "c3"]
    assert calls.next_deadline() == 3
    assert [c.correlation_id for c in calls.expire(10)] == ["c1"]
    assert calls.next_deadline() is None and len(calls) == 0


def test_a_reply_after_the_timeout_is_late_then_duplicate():
    calls = book()
    calls.add(0.0, 1)
    assert len(calls.expire(1.0)) == 1
    late = calls.on_reply("c1", 1.5)
    assert late.kind == LATE and late.latency_ms == pytest.approx(1500.0)
    assert calls.on_reply("c1", 1.6).kind == DUPLICATE


def test_answered_calls_do_not_expire_and_leave_no_deadline():
    calls = book()
    calls.add(0.0, 1)
    calls.on_reply("c1", 0.5)
    assert calls.next_deadline() is None
    assert calls.expire(100) == []


def test_cancel_forgets_a_call_and_its_reply_is_late():
    calls = book()
    calls.add(0.0, 5)
    assert calls.cancel("c1").correlation_id == "c1"
    assert calls.cancel("c1") is None
    assert calls.on_reply("c1", 0.2).kind == LATE


def test_fail_all_empties_the_book_and_later_replies_are_late():
    calls = book()
    for _ in range(3):
        calls.add(0.0, 5)
    failed = calls.fail_all()
    assert sorted(c.correlation_id for c in failed) == ["c1", "c2", "c3"]
    assert len(calls) == 0 and calls.next_deadline() is None and calls.expire(99) == []
    assert calls.on_reply("c2", 1.0).kind == LATE


def test_memory_of_finished_calls_is_bounded_and_old_ids_become_unknown():
    calls = book(remember=2)
    for now in range(3):
        calls.add(float(now), 5)
        calls.on_reply(f"c{now + 1}", float(now))
    assert calls.on_reply("c1", 9).kind == UNKNOWN  # forgotten
    assert calls.on_reply("c3", 9).kind == DUPLICATE


def test_ids_are_unique_and_reuse_is_refused():
    calls = PendingCalls()
    ids = {calls.add(0.0, 1).correlation_id for _ in range(1000)}
    assert len(ids) == 1000
    with pytest.raises(ValueError, match="already in use"):
        calls.add(0.0, 1, correlation_id=next(iter(ids)))
    with pytest.raises(ValueError, match="timeout_s"):
        calls.add(0.0, 0)


# A model check: random interleavings of add / reply / expire agree with a plain dictionary model.
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.floats(min_value=0.1, max_value=5)),
        st.tuples(st.just("reply"), st.integers(min_value=1, max_value=25)),
        st.tuples(st.just("tick"), st.floats(min_value=0, max_value=2)),
    ),
    max_size=80,
)


@given(ops)
def test_book_agrees_with_a_simple_model(script):
    calls = book()
    now = 0.0
    model: dict[str, tuple[str, float]] = {}  # id -> (state, deadline); state in pending/answered/timed_out
    issued = 0
    for op, arg in script:
        if op == "add":
            issued += 1
            call = calls.add(now, arg)
            model[call.correlation_id] = ("pending", now + arg)
        elif op == "tick":
            now += arg
            expired = {c.correlation_id for c in calls.expire(now)}
            expected = {cid for cid, (state, dl) in model.items() if state == "pending" and dl <= now}
            assert expired == expected
            for cid in expected:
                model[cid] = ("timed_out", model[cid][1])
        else:
            cid = f"c{arg}"
            outcome = calls.on_reply(cid, now)
            state = model.get(cid, ("unknown", 0))[0]
            expected_kind = {"pending": ANSWERED, "answered": DUPLICATE, "timed_out": LATE, "unknown": UNKNOWN}[state]
            assert outcome.kind == expected_kind
            if state in ("pending", "timed_out"):
                model[cid] = ("answered", model[cid][1])
        pending = [dl for state, dl in model.values() if state == "pending"]
        assert len(calls) == len(pending)
        # a deadline may have passed without a tick; the book still reports the earliest one
        assert calls.next_deadline() == (min(pending) if pending else None)
