"""Explain, then verify (lab/route_verification.py): predictions against the broker's routed_queues."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lab.route_verification import RouteVerifier


class Engine:
    """A predict function with a fixed answer for a plain read and another for a fresh one."""

    def __init__(self, queues: list[str] | None, fresh: list[str] | None = None, lab: list[str] = ()) -> None:
        self.queues, self.fresh, self.lab = queues, fresh if fresh is not None else queues, list(lab)
        self.calls: list[tuple[str, str, dict[str, Any], bool]] = []

    def __call__(
        self, exchange: str, routing_key: str, headers: Mapping[str, Any], *, fresh: bool = False
    ) -> dict[str, Any] | None:
        self.calls.append((exchange, routing_key, dict(headers), fresh))
        queues = self.fresh if fresh else self.queues
        if queues is None:
            return {"queues": [], "lab_queues": [], "routed": None, "topology_version": "v?"}
        version = "v2" if fresh else "v1"
        return {"queues": queues, "lab_queues": self.lab, "routed": bool(queues), "topology_version": version}


def publish(routed: list[str], **extra: Any) -> dict[str, Any]:
    event = {
        "kind": "publish",
        "exchange": "x",
        "routing_key": "a.b",
        "routed_queues": routed,
        "headers": {"h": 1},
        "time": 10.0,
        "connection": "elsewhere",
        "user": "guest",
    }
    return {**event, **extra}


def test_agreement_is_counted_and_the_engine_is_asked_with_the_publish():
    engine = Engine(["q1", "q2"])
    verifier = RouteVerifier(engine)
    assert verifier.check(publish(["q2", "q1"])) is None
    assert engine.calls == [("x", "a.b", {"h": 1}, False)]
    assert verifier.summary()["checked"] == 1 and verifier.summary()["agreed"] == 1


def test_the_headers_of_the_one_message_shape_are_read_from_its_properties():
    engine = Engine(["q"])
    verifier = RouteVerifier(engine)
    event = publish(["q"])
    del event["headers"]
    event["properties"] = {"headers": {"format": "pdf", "x-rabbitlens-id": "m-2"}, "priority": 1}
    assert verifier.check(event) is None
    assert engine.calls[0][2] == {"format": "pdf", "x-rabbitlens-id": "m-2"}


def test_deliveries_are_not_checked():
    verifier = RouteVerifier(Engine(["q"]))
    assert verifier.check({"kind": "deliver", "queue": "q", "routed_queues": []}) is None
    assert verifier.summary()["checked"] == 0


def test_a_disagreement_keeps_both_answers_and_the_topology_versions():
    verifier = RouteVerifier(Engine(["q1"], lab=["amq.gen-tap"]), clock=lambda: 20.0)
    record = verifier.check(publish(["q1", "q3"], headers={"x-rabbitlens-id": "m-1"}))
    assert record is not None
    assert record["broker"] == ["q1", "q3"]
    assert record["predicted"] == ["q1"] and record["repredicted"] == ["q1"]
    assert record["only_broker"] == ["q3"] and record["only_predicted"] == []
    assert record["topology_version"] == {"predicted": "v1", "reread": "v2"}
    assert record["id"] == "m-1" and record["at"] == 20_000 and record["published_at"] == 10_000
    assert record["lab_queues"] == ["amq.gen-tap"]
    summary = verifier.summary()
    assert summary["checked"] == 1 and summary["agreed"] == 0 and summary["disagreed"] == [record]


def test_a_stale_listing_is_read_again_before_a_disagreement_is_flagged():
    engine = Engine([], fresh=["new-q"])
    verifier = RouteVerifier(engine)
    assert verifier.check(publish(["new-q"])) is None
    assert [c[3] for c in engine.calls] == [False, True]
    summary = verifier.summary()
    assert summary["agreed"] == 1 and summary["agreed_after_reread"] == 1 and summary["disagreed"] == []


def test_what_the_engine_cannot_tell_is_not_counted_as_checked():
    verifier = RouteVerifier(Engine(None))
    assert verifier.check(publish(["q"])) is None
    assert verifier.summary()["checked"] == 0 and verifier.summary()["unknown"] == 1


def test_only_the_last_disagreements_are_kept():
    verifier = RouteVerifier(Engine([]), keep=100)
    for n in range(150):
        verifier.check(publish([f"q{n}"]))
    summary = verifier.summary()
    assert summary["disagreed_total"] == 150 and len(summary["disagreed"]) == 100
    assert summary["disagreed"][0]["broker"] == ["q50"] and summary["disagreed"][-1]["broker"] == ["q149"]


QUEUES = st.lists(st.sampled_from(["a", "b", "c", "amq.gen-tap"]), max_size=4)


@given(st.lists(st.tuples(QUEUES, QUEUES), max_size=30))
def test_checked_is_agreed_plus_disagreed_and_agreement_is_set_equality(pairs):
    verifier = RouteVerifier(lambda e, k, h, *, fresh=False: None)
    for predicted, broker in pairs:
        verifier.predict = Engine(predicted)
        record = verifier.check(publish(broker))
        assert (record is None) == (set(predicted) == set(broker))
    summary = verifier.summary()
    assert summary["checked"] == len(pairs) == summary["agreed"] + summary["disagreed_total"]
