"""The adaptive batcher and the per-client view ledger, without I/O and with a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from web.batching import AdaptiveBatcher, Flush, ViewLedger


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(clock: FakeClock, **kwargs: object) -> AdaptiveBatcher:
    options = {"max_batch": 10, "max_pending": 40, "rate": 100.0, "burst": 3, **kwargs}
    return AdaptiveBatcher(clock=clock, **options)


def drain(batcher: AdaptiveBatcher, clock: FakeClock) -> list[Flush]:
    """Take every flush, advancing the clock by each delay the batcher asks for."""
    flushes = []
    while (delay := batcher.delay()) is not None:
        clock.advance(delay)
        flush = batcher.take()
        assert flush is not None, "take() must hand something out once delay() has passed"
        flushes.append(flush)
    return flushes


def test_nothing_pending_means_no_delay_and_no_flush():
    clock = FakeClock()
    batcher = make(clock)
    assert batcher.delay() is None
    assert batcher.take() is None


def test_light_traffic_leaves_one_event_at_a_time_without_waiting():
    clock = FakeClock()
    batcher = make(clock)
    for i in range(50):
        batcher.add("tap", i)
        assert batcher.delay() == 0.0
        flush = batcher.take()
        assert flush.events == [("tap", i)]
        clock.advance(0.02)  # 50 events/s, below the flush rate of 100/s
    assert batcher.batches == 0
    assert batcher.flushes == 50


def test_a_burst_beyond_the_bucket_waits_and_leaves_as_one_batch():
    clock = FakeClock()
    batcher = make(clock)
    for i in range(3):  # the burst allowance: three immediate flushes
        batcher.add("tap", i)
        assert len(batcher.take().events) == 1
    for i in range(3, 8):
        batcher.add("tap", i)
    assert batcher.take() is None, "the bucket is empty: events must wait"
    assert batcher.delay() == pytest.approx(0.01)  # one token at 100/s
    clock.advance(0.01)
    flush = batcher.take()
    assert [data for _, data in flush.events] == [3, 4, 5, 6, 7]
    assert flush.counts == {"tap": 5}
    assert batcher.batches == 1


def test_a_batch_never_holds_more_than_max_batch_events():
    clock = FakeClock()
    batcher = make(clock, max_batch=10, max_pending=40)
    for i in range(35):
        batcher.add("delivery", i)
    sizes = [len(f.events) for f in drain(batcher, clock)]
    assert sizes == [10, 10, 10, 5]


def test_a_flood_keeps_memory_bounded_and_drops_the_oldest_from_the_view():
    clock = FakeClock()
    batcher = make(clock, max_batch=10, max_pending=40)
    for i in range(1000):
        batcher.add("tap", i)
        assert batcher.pending <= 40
    assert batcher.totals["tap"] == 1000
    assert batcher.dropped["tap"] == 960
    flushes = drain(batcher, clock)
    kept = [data for f in flushes for _, data in f.events]
    assert kept == list(range(960, 1000)), "the newest events survive, in order"
    assert sum(f.dropped.get("tap", 0) for f in flushes) == 960


def test_drops_are_counted_under_each_event_name():
    clock = FakeClock()
    batcher = make(clock, max_batch=2, max_pending=2)
    for name in ["tap", "trace", "tap", "trace", "delivery"]:
        batcher.add(name, None)
    # pending holds the last two (trace, delivery); the first tap, first trace and second tap were dropped
    assert dict(batcher.dropped) == {"tap": 2, "trace": 1}
    flush = batcher.take()
    assert flush.dropped == {"tap": 2, "trace": 1}
    assert flush.events == [("trace", None), ("delivery", None)]
    assert flush.totals == {"tap": 2, "trace": 2, "delivery": 1}


def test_drops_since_the_previous_flush_are_reported_once():
    clock = FakeClock()
    batcher = make(clock, max_batch=1, max_pending=1)
    batcher.add("tap", 1)
    batcher.add("tap", 2)
    assert batcher.take().dropped == {"tap": 1}
    batcher.add("tap", 3)
    assert batcher.take().dropped == {}


def test_tokens_come_back_after_a_quiet_spell():
    clock = FakeClock()
    batcher = make(clock, burst=2, rate=10.0)
    for i in range(2):
        batcher.add("tap", i)
        batcher.take()
    batcher.add("tap", 2)
    assert batcher.delay() == pytest.approx(0.1)
    clock.advance(5.0)  # long quiet: the bucket refills but never beyond the burst
    assert batcher.delay() == 0.0
    assert batcher.take() is not None  # one of the two refilled tokens
    batcher.add("tap", 3)
    assert batcher.take() is not None  # the other
    batcher.add("tap", 4)
    assert batcher.take() is None, "five quiet seconds refill two tokens (the burst), not fifty"


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        AdaptiveBatcher(max_batch=10, max_pending=5)
    with pytest.raises(ValueError):
        AdaptiveBatcher(rate=0)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["tap", "trace", "delivery"]), st.integers(0, 30), st.floats(0, 0.05)),
        max_size=60,
    ),
    max_batch=st.integers(1, 8),
    extra=st.integers(0, 16),
)
def test_every_event_is_either_delivered_once_in_order_or_counted_as_dropped(steps, max_batch, extra):
    clock = FakeClock()
    batcher = make(clock, max_batch=max_batch, max_pending=max_batch + extra, rate=50.0, burst=2)
    sent: list[tuple[str, int]] = []
    got: list[tuple[str, int]] = []
    dropped_seen: dict[str, int] = {}
    seq = 0

    def collect(flush: Flush | None) -> None:
        if flush is None:
            return
        assert 1 <= len(flush.events) <= max_batch
        got.extend(flush.events)
        for name, n in flush.dropped.items():
            dropped_seen[name] = dropped_seen.get(name, 0) + n

    for name, burst, pause in steps:
        for _ in range(burst):
            batcher.add(name, seq)
            sent.append((name, seq))
            seq += 1
            assert batcher.pending <= max_batch + extra
        clock.advance(pause)
        if batcher.delay() == 0.0:
            collect(batcher.take())
    for flush in drain(batcher, clock):
        collect(flush)

    assert [s for _, s in got] == sorted(s for _, s in got), "order is kept"
    assert set(got) <= set(sent)
    assert len(got) == len(set(got)), "no event twice"
    for name in ("tap", "trace", "delivery"):
        sent_n = sum(1 for n, _ in sent if n == name)
        got_n = sum(1 for n, _ in got if n == name)
        assert batcher.totals.get(name, 0) == sent_n
        assert got_n + dropped_seen.get(name, 0) == sent_n, "totals are exact: received + dropped = sent"
        assert batcher.dropped.get(name, 0) == dropped_seen.get(name, 0)


# --------------------------------------------------------------------------- the ledger
def flush_of(events: list[tuple[str, object]], dropped: dict[str, int] | None = None) -> Flush:
    counts: dict[str, int] = {}
    for name, _ in events:
        counts[name] = counts.get(name, 0) + 1
    return Flush(events=events, dropped=dropped or {}, counts=counts, totals=dict(counts))


def test_a_single_event_goes_out_under_its_own_name_to_all_ready_clients():
    ledger = ViewLedger()
    emits = ledger.plan(flush_of([("tap", {"n": 1})]), ready=["a", "b"])
    assert len(emits) == 1
    assert emits[0].event == "tap"
    assert emits[0].data == {"n": 1}
    assert sorted(emits[0].sids) == ["a", "b"]


def test_several_events_go_out_as_one_batch_with_totals():
    ledger = ViewLedger()
    emits = ledger.plan(flush_of([("tap", 1), ("trace", 2)]), ready=["a"])
    assert [e.event for e in emits] == ["batch"]
    batch = emits[0].data
    assert batch["events"] == [{"event": "tap", "data": 1}, {"event": "trace", "data": 2}]
    assert batch["dropped"] == {}
    assert batch["totals"] == {"tap": 1, "trace": 1}


def test_a_lagging_client_is_skipped_and_told_later_what_it_missed():
    ledger = ViewLedger()
    ledger.connect("slow")
    ledger.connect("fast")
    emits = ledger.plan(flush_of([("tap", 1), ("tap", 2)]), ready=["fast"], lagging=["slow"])
    assert [(e.event, e.sids) for e in emits] == [("batch", ["fast"])]
    assert ledger.dropped("slow") == {"tap": 2}
    assert ledger.dropped("fast") == {}
    # The slow client has caught up: even a single event goes out as a batch so it learns its drop count.
    emits = ledger.plan(flush_of([("tap", 3)]), ready=["fast", "slow"])
    by_event = {e.event: e for e in emits}
    assert by_event["tap"].sids == ["fast"]
    assert by_event["batch"].sids == ["slow"]
    assert by_event["batch"].data["dropped"] == {"tap": 2}
    # Once told, single events go out under their own name again.
    emits = ledger.plan(flush_of([("tap", 4)]), ready=["fast", "slow"])
    assert [(e.event, sorted(e.sids)) for e in emits] == [("tap", ["fast", "slow"])]


def test_view_drops_reach_every_client_and_clients_with_equal_counts_share_an_emit():
    ledger = ViewLedger()
    emits = ledger.plan(flush_of([("tap", 1)], dropped={"tap": 5}), ready=["a", "b"])
    assert len(emits) == 1
    assert emits[0].event == "batch"
    assert sorted(emits[0].sids) == ["a", "b"]
    assert emits[0].data["dropped"] == {"tap": 5}


def test_a_reconnected_client_starts_counting_again_and_gone_clients_are_forgotten():
    ledger = ViewLedger()
    ledger.plan(flush_of([("tap", 1)]), ready=[], lagging=["a"])
    assert ledger.dropped("a") == {"tap": 1}
    ledger.connect("a")
    assert ledger.dropped("a") == {}
    ledger.plan(flush_of([("tap", 2)]), ready=["b"])
    assert ledger.sids() == ["b"]


def test_a_client_skipped_by_the_last_flush_is_told_its_drops_once_it_catches_up():
    ledger = ViewLedger()
    ledger.plan(flush_of([("tap", 1), ("tap", 2)]), ready=["fast"], lagging=["slow"])
    assert ledger.untold(["slow"]) == ["slow"]
    notices = ledger.notices(["fast", "slow"], totals={"tap": 2})
    assert [(n.event, n.sids, n.data["events"], n.data["dropped"]) for n in notices] == [
        ("batch", ["slow"], [], {"tap": 2})
    ]
    assert ledger.notices(["fast", "slow"], totals={"tap": 2}) == [], "told once"
    assert ledger.untold(["slow"]) == []
