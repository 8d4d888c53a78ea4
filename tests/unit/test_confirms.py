"""The confirm ledger against a model of the broker's answers: every message confirmed exactly once, in order."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rabbit.confirms import ConfirmLedger, window_for

RETURN = {"reply_code": 312, "reply_text": "NO_ROUTE", "exchange": "x", "routing_key": "k"}


def sent(ledger, count, prefix="m"):
    return [ledger.send(f"{prefix}-{i}", float(i)) for i in range(1, count + 1)]


def test_tags_count_from_one_in_publish_order():
    ledger = ConfirmLedger()
    assert sent(ledger, 3) == [1, 2, 3]
    assert ledger.sent == 3
    assert ledger.unconfirmed == 3


def test_a_single_ack_confirms_only_its_message():
    ledger = ConfirmLedger()
    sent(ledger, 3)
    [done] = ledger.acked(2)
    assert (done.message_id, done.tag, done.acked, done.routed, done.published_at) == ("m-2", 2, True, True, 2.0)
    assert ledger.unconfirmed == 2


def test_a_multiple_ack_confirms_every_tag_up_to_it_oldest_first():
    ledger = ConfirmLedger()
    sent(ledger, 5)
    ledger.acked(2)
    assert [d.tag for d in ledger.acked(4, multiple=True)] == [1, 3, 4]
    assert ledger.unconfirmed == 1


def test_a_nack_is_not_routed():
    ledger = ConfirmLedger()
    sent(ledger, 2)
    done = ledger.nacked(2, multiple=True)
    assert [(d.acked, d.routed) for d in done] == [(False, False), (False, False)]


def test_a_return_before_the_ack_marks_the_message_returned_not_routed():
    ledger = ConfirmLedger()
    sent(ledger, 3)
    assert ledger.returned("m-2", RETURN) is True
    done = ledger.acked(3, multiple=True)
    assert [d.routed for d in done] == [True, False, True]
    assert done[1].returned == RETURN
    assert done[1].acked is True


def test_returns_of_unknown_or_missing_ids_are_ignored():
    ledger = ConfirmLedger()
    sent(ledger, 1)
    assert ledger.returned("other", RETURN) is False
    assert ledger.returned(None, RETURN) is False
    assert ledger.acked(1)[0].routed is True


def test_confirms_of_unknown_tags_change_nothing():
    ledger = ConfirmLedger()
    sent(ledger, 2)
    assert ledger.acked(7) == []
    assert ledger.acked(1) != []
    assert ledger.acked(1) == []  # twice: the broker never does, the ledger shrugs
    assert ledger.unconfirmed == 1


def test_an_id_cannot_wait_twice_but_may_be_reused_once_confirmed():
    ledger = ConfirmLedger()
    ledger.send("same", 0.0)
    with pytest.raises(ValueError):
        ledger.send("same", 0.0)
    ledger.acked(1)
    assert ledger.send("same", 0.0) == 2


def test_abandon_hands_back_what_still_waited_and_empties_the_ledger():
    ledger = ConfirmLedger()
    sent(ledger, 4)
    ledger.returned("m-4", RETURN)
    ledger.acked(2, multiple=True)
    assert ledger.abandon() == [("m-3", 3.0), ("m-4", 4.0)]
    assert ledger.unconfirmed == 0
    assert ledger.sent == 4  # the channel's numbering goes on


def test_the_window_shrinks_for_large_bodies_but_never_below_one():
    mib = 1024 * 1024
    assert window_for(64, 1000, 16 * mib) == 1000
    assert window_for(mib, 1000, 16 * mib) == 16
    assert window_for(16 * mib + 1, 1000, 16 * mib) == 1
    assert window_for(0, 1000, 16 * mib) == 1000
    with pytest.raises(ValueError):
        window_for(10, 0, 16 * mib)


@given(st.integers(0, 2**24), st.integers(1, 5000), st.integers(1, 2**26))
def test_the_window_holds_both_limits(body_size, window, max_bytes):
    got = window_for(body_size, window, max_bytes)
    assert 1 <= got <= window
    assert got == 1 or got * body_size <= max_bytes


# The broker's side as a model: it answers the messages in tag order, in runs; each run is one ack or nack,
# for one message or (multiple) for every waiting tag up to the run's last one. Some messages come back first.
@st.composite
def broker_answers(draw):
    count = draw(st.integers(1, 60))
    returned = draw(st.sets(st.integers(1, count)))
    answers = []
    tag = 0
    while tag < count:
        size = draw(st.integers(1, count - tag))
        acked = draw(st.booleans())
        if size == 1 or draw(st.booleans()):
            answers.append((tag + size, acked, True))
        else:  # the same run as single confirms
            answers.extend((t, acked, False) for t in range(tag + 1, tag + size + 1))
        tag += size
    return count, returned, answers


@given(broker_answers())
def test_every_message_is_confirmed_exactly_once_in_order(case):
    count, returned, answers = case
    ledger = ConfirmLedger()
    sent(ledger, count)
    for tag in returned:
        ledger.returned(f"m-{tag}", RETURN)
    expected_acked = {}  # the model: an answer settles every unsettled tag up to its own
    for tag, acked, _ in answers:
        for t in range(1, tag + 1):
            expected_acked.setdefault(t, acked)
    done = []
    for tag, acked, multiple in answers:
        done.extend(ledger.acked(tag, multiple) if acked else ledger.nacked(tag, multiple))
    assert [d.tag for d in done] == list(range(1, count + 1))
    assert ledger.unconfirmed == 0
    for d in done:
        assert d.message_id == f"m-{d.tag}"
        assert d.acked == expected_acked[d.tag]
        assert (d.returned is not None) == (d.tag in returned)
        assert d.routed == (d.acked and d.tag not in returned)
