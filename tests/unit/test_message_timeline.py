"""The pure timeline of lab messages (lab/messages.py): fed the hub's events, it keeps what was observed."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.messages import MessageTimeline, lab_id_of


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def timeline(**kwargs: Any) -> MessageTimeline:
    return MessageTimeline(clock=Clock(), **kwargs)


def published(message_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    event = {
        "id": message_id,
        "exchange": "x",
        "routing_key": "quick.orange.rabbit",
        "properties": {"headers": {"colour": "orange", "x-rabbitlens-id": message_id}, "priority": 3},
        "size": 2,
        "mandatory": False,
        "confirmed": True,
        "routed": True,
        "dropped": False,
        "time": 1000.0,
    }
    return {**event, **extra}


def delivery(message_id: str = "m-1", queue: str = "q", at: float = 1000.5, **extra: Any) -> dict[str, Any]:
    event = {
        "consumer_id": "c-1",
        "queue": queue,
        "exchange": "x",
        "routing_key": "quick.orange.rabbit",
        "redelivered": False,
        "delivery_tag": 1,
        "id": message_id,
        "properties": {"headers": {"x-rabbitlens-id": message_id}},
        "ack": "manual",
        "time": at,
    }
    return {**event, **extra}


def stages(book: MessageTimeline, message_id: str = "m-1") -> list[str]:
    found = book.get(message_id)
    assert found is not None
    return [s["stage"] for s in found["stages"]]


MATCH = {
    "binding": {"source": "x", "destination": "q", "destination_type": "queue", "routing_key": "*.orange.*"},
    "destination": "q",
    "destination_type": "queue",
    "via": ["x"],
    "explanation": {"type": "topic", "matched": True, "text": "'*.orange.*' matches"},
    "lab": False,
}


def test_an_unknown_id_has_no_timeline_and_unknown_events_are_ignored():
    book = timeline()
    book.observe("broker_status", {"connected": True})
    book.observe("delivery", "not a mapping")
    assert book.get("m-1") is None
    assert len(book) == 0


def test_publish_route_confirm_deliver_ack_in_order():
    book = timeline()
    book.observe("published", published())
    book.observe("prediction", {"id": "m-1", "matches": [MATCH], "topology_version": "v1"})
    book.observe("delivery", delivery())
    book.observe("ack", {"consumer_id": "c-1", "queue": "q", "delivery_tag": 1, "id": "m-1", "time": 1000.6})
    found = book.get("m-1")
    assert found["exchange"] == "x" and found["routing_key"] == "quick.orange.rabbit"
    assert found["properties"] == {"headers": {"colour": "orange"}, "priority": 3}
    assert [s["stage"] for s in found["stages"]] == ["published", "routed", "confirmed", "queued", "delivered", "acked"]
    routed = found["stages"][1]
    assert routed["binding"]["routing_key"] == "*.orange.*"
    assert routed["explanation"]["type"] == "topic"
    assert routed["topology_version"] == "v1" and routed["source"] == "prediction"
    assert routed["at"] == found["stages"][0]["at"] == 1_000_000
    queued, delivered = found["stages"][3], found["stages"][4]
    assert queued == {"stage": "queued", "at": 1_000_500, "queue": "q", "source": "delivery"}
    assert delivered["consumer_id"] == "c-1" and delivered["delivery_tag"] == 1 and delivered["redelivered"] is False


def test_no_queued_stage_from_a_prediction_alone():
    book = timeline()
    book.observe("published", published())
    book.observe("prediction", {"id": "m-1", "matches": [MATCH]})
    assert stages(book) == ["published", "routed", "confirmed"]


def test_a_nacked_publish():
    book = timeline()
    book.observe("published", published(confirmed=False, routed=False))
    assert stages(book) == ["published", "nacked"]


def test_a_mandatory_return():
    book = timeline()
    book.observe("published", published(mandatory=True, routed=False))
    book.observe("returned", {"id": "m-1", "reply_code": 312, "reply_text": "NO_ROUTE", "exchange": "x"})
    found = book.get("m-1")
    assert stages(book) == ["published", "confirmed", "unroutable", "returned"]
    assert found["stages"][2]["mandatory"] is True
    assert found["stages"][3]["reply_code"] == 312 and found["stages"][3]["reply_text"] == "NO_ROUTE"


def test_an_unroutable_plain_publish_is_dropped():
    book = timeline()
    book.observe("published", published(routed=False, dropped=True))
    found = book.get("m-1")
    assert stages(book) == ["published", "confirmed", "unroutable"]
    assert found["stages"][2]["dropped"] is True


def test_requeue_then_redelivery_is_queued_once():
    book = timeline()
    book.observe("published", published())
    book.observe("delivery", delivery())
    book.observe(
        "nack", {"id": "m-1", "queue": "q", "consumer_id": "c-1", "kind": "nack", "requeue": True, "time": 1000.6}
    )
    book.observe("delivery", delivery(at=1000.9, redelivered=True, delivery_tag=2))
    assert stages(book) == ["published", "confirmed", "queued", "delivered", "requeued", "delivered"]
    assert book.get("m-1")["stages"][-1]["redelivered"] is True


def test_reject_then_dead_letter_from_the_x_death_header():
    book = timeline()
    book.observe("published", published())
    book.observe("delivery", delivery())
    book.observe(
        "nack", {"id": "m-1", "queue": "q", "consumer_id": "c-1", "kind": "reject", "requeue": False, "time": 1000.6}
    )
    death = {"count": 1, "reason": "rejected", "queue": "q", "time": "1970-01-01T00:16:40", "exchange": "x"}
    dead = delivery(queue="dlq", at=1000.7, exchange="dlx", routing_key="quick.orange.rabbit", consumer_id="c-2")
    dead["properties"] = {"headers": {"x-rabbitlens-id": "m-1", "x-death": [death]}}
    book.observe("delivery", dead)
    found = book.get("m-1")
    assert stages(book) == [
        "published",
        "confirmed",
        "queued",
        "delivered",
        "rejected",
        "dead_lettered",
        "queued",
        "delivered",
    ]
    dead_lettered = found["stages"][5]
    assert dead_lettered["from_queue"] == "q"
    assert dead_lettered["to_exchange"] == "dlx"
    assert dead_lettered["routing_key"] == "quick.orange.rabbit"
    assert dead_lettered["reason"] == "rejected"
    assert dead_lettered["x_death_time"] == 1_000_000
    assert found["stages"][6]["queue"] == "dlq"


def test_a_reject_seen_after_the_dead_lettered_copy_still_comes_first():
    book = timeline()
    book.observe("published", published())
    book.observe("delivery", delivery())
    dead = delivery(queue="dlq", at=1000.7, exchange="dlx")
    dead["properties"] = {"headers": {"x-death": [{"count": 1, "reason": "rejected", "queue": "q"}]}}
    book.observe("delivery", dead)
    book.observe("nack", {"id": "m-1", "queue": "q", "kind": "reject", "requeue": False, "time": 1000.6})
    assert stages(book)[3:6] == ["delivered", "rejected", "dead_lettered"]


def test_expired_and_maxlen_dead_letters():
    book = timeline()
    book.observe("published", published())
    for count, reason, source, queue in ((1, "expired", "short", "dlq"), (2, "maxlen", "dlq", "dlq2")):
        dead = delivery(queue=queue, at=1000.0 + count, exchange="dlx")
        dead["properties"] = {"headers": {"x-death": [{"count": count, "reason": reason, "queue": source}]}}
        book.observe("delivery", dead)
    found = book.get("m-1")
    assert stages(book) == [
        "published",
        "confirmed",
        "expired",
        "dead_lettered",
        "queued",
        "delivered",
        "dead_lettered",
        "queued",
        "delivered",
    ]
    assert found["stages"][2]["queue"] == "short"
    assert [s["reason"] for s in found["stages"] if s["stage"] == "dead_lettered"] == ["expired", "maxlen"]
    # the x-death time has no milliseconds: never placed before the publish
    assert found["stages"][2]["at"] >= found["stages"][0]["at"]


def test_the_same_dead_lettering_seen_twice_is_one_stage():
    book = timeline()
    headers = {"x-death": [{"count": 1, "reason": "rejected", "queue": "q"}]}
    for tag in (1, 2):
        dead = delivery(queue="dlq", delivery_tag=tag, exchange="dlx")
        dead["properties"] = {"headers": headers}
        book.observe("delivery", dead)
    assert stages(book).count("dead_lettered") == 1


def test_trace_routed_queues_are_queued_with_taps_marked_the_lab_s():
    book = timeline()
    book.observe("taps", [{"id": "t1", "queue": "amq.gen-tap", "exchange": "x"}])
    trace = {
        "kind": "publish",
        "exchange": "x",
        "routing_key": "k",
        "routed_queues": ["q", "amq.gen-tap"],
        "headers": {"x-rabbitlens-id": "m-1"},
        "properties": {"headers": {"x-rabbitlens-id": "m-1"}},
        "time": 1000.001,
    }
    book.observe("trace", trace)
    book.observe("published", published())
    book.observe("tap", {"tap_id": "t1", "lab_id": "m-1", "exchange": "x", "routing_key": "k", "time": 1000.002})
    found = book.get("m-1")
    queued = [s for s in found["stages"] if s["stage"] == "queued"]
    assert [(s["queue"], s.get("lab")) for s in queued] == [("q", None), ("amq.gen-tap", "tap")]
    assert all(s["source"] == "trace" for s in queued)


def test_a_trace_publish_routed_nowhere_is_unroutable():
    book = timeline()
    book.observe("trace", {"kind": "publish", "routed_queues": [], "headers": {"x-rabbitlens-id": "m-9"}})
    assert stages(book, "m-9") == ["unroutable"]


def test_a_tap_event_in_the_new_shape_is_read_by_its_id():
    book = timeline()
    book.observe("taps", [{"id": "t1", "queue": "amq.gen-tap"}])
    book.observe("tap", {"tap_id": "t1", "id": "m-1", "body": {"kind": "text"}, "time": 1000.1})
    assert book.get("m-1")["stages"][0]["queue"] == "amq.gen-tap"


def test_a_trace_delivery_and_the_lab_s_delivery_are_one_stage_whichever_comes_first():
    for trace_first in (True, False):
        book = timeline()
        book.observe("published", published())
        trace = {"kind": "deliver", "queue": "q", "headers": {"x-rabbitlens-id": "m-1"}, "time": 1000.4}
        events = [("trace", trace), ("delivery", delivery())]
        for name, event in events if trace_first else reversed(events):
            book.observe(name, event)
        found = book.get("m-1")
        delivered = [s for s in found["stages"] if s["stage"] == "delivered"]
        assert len(delivered) == 1, trace_first
        assert delivered[0]["consumer_id"] == "c-1" and delivered[0]["traced"] is True
        assert stages(book).count("queued") == 1


def test_another_application_s_delivery_from_the_trace():
    book = timeline()
    book.observe("published", published())
    trace = {"kind": "deliver", "queue": "q", "redelivered": False, "headers": {"x-rabbitlens-id": "m-1"}}
    book.observe("trace", {**trace, "connection": "10.0.0.2:5555 -> 10.0.0.1:5672", "time": 1000.4})
    found = book.get("m-1")
    assert stages(book) == ["published", "confirmed", "queued", "delivered"]
    assert found["stages"][3]["consumer_id"] is None and found["stages"][3]["source"] == "trace"


def test_auto_ack_deliveries_are_acked_on_delivery():
    book = timeline()
    book.observe("delivery", delivery(ack="auto"))
    found = book.get("m-1")
    assert stages(book) == ["queued", "delivered", "acked"]
    assert found["stages"][2]["auto"] is True


def test_a_route_disagreement_is_kept_with_its_message():
    book = timeline()
    book.observe("published", published())
    book.observe("route_disagreement", {"id": "m-1", "broker": ["a"], "predicted": []})
    assert book.get("m-1")["route_disagreement"]["broker"] == ["a"]


def test_lab_id_of_reads_every_shape():
    assert lab_id_of({"id": "a"}) == "a"
    assert lab_id_of({"id": None, "lab_id": "b"}) == "b"
    assert lab_id_of({"headers": {"x-rabbitlens-id": "c"}}) == "c"
    assert lab_id_of({"properties": {"headers": {"x-rabbitlens-id": "d"}}}) == "d"
    assert lab_id_of({"id": 5, "headers": {"x-rabbitlens-id": 7}}) is None


def test_only_the_last_kept_messages_are_kept():
    book = timeline(kept=3)
    for n in range(5):
        book.observe("published", published(f"m-{n}"))
    assert len(book) == 3
    assert book.get("m-0") is None and book.get("m-1") is None
    assert book.get("m-4") is not None


def test_a_message_requeued_forever_keeps_its_first_and_latest_stages():
    book = timeline(max_stages=20)
    book.observe("published", published())
    for tag in range(100):
        book.observe("delivery", delivery(at=1001 + tag, delivery_tag=tag, redelivered=bool(tag)))
        book.observe("nack", {"id": "m-1", "queue": "q", "requeue": True, "time": 1001.5 + tag})
    found = book.get("m-1")
    assert len(found["stages"]) == 20
    assert found["stages_dropped"] == 2 + 200 - 20 + 1  # published, confirmed, queued + 200 - 20 kept
    assert found["stages"][0]["stage"] == "published"
    assert found["stages"][-1]["stage"] == "requeued" and found["stages"][-2]["delivery_tag"] == 99


EVENT_NAMES = st.sampled_from(["published", "prediction", "returned", "delivery", "ack", "nack", "tap", "trace"])
IDS = st.sampled_from(["m-1", "m-2", "m-3", "m-4", None])
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3), st.floats(0, 2000))


@st.composite
def events(draw: Any) -> tuple[str, dict[str, Any]]:
    name = draw(EVENT_NAMES)
    payload = draw(st.dictionaries(st.sampled_from(["queue", "exchange", "routing_key", "kind", "time"]), VALUES))
    payload["id"] = draw(IDS)
    if draw(st.booleans()):
        payload["kind"] = draw(st.sampled_from(["publish", "deliver"]))
        payload["routed_queues"] = draw(st.lists(st.sampled_from(["a", "b"]), max_size=2))
        payload["headers"] = {"x-rabbitlens-id": payload["id"]}
    if draw(st.booleans()):
        death = {"reason": draw(st.sampled_from(["rejected", "expired", "maxlen"])), "queue": "a", "count": 1}
        payload["properties"] = {"headers": {"x-death": [death], "x-rabbitlens-id": payload["id"]}}
    if name == "published":
        payload["time"] = draw(st.floats(900, 1100))
        payload["confirmed"] = draw(st.booleans())
        payload["routed"] = draw(st.booleans())
    if name == "prediction":
        payload["matches"] = [MATCH] * draw(st.integers(0, 3))
    return name, payload


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), max_size=60))
def test_any_event_stream_stays_bounded_and_in_order(stream):
    book = timeline(kept=3, max_stages=15)
    for name, payload in stream:
        book.observe(name, payload)
    assert len(book) <= 3
    for message_id in ("m-1", "m-2", "m-3", "m-4"):
        found = book.get(message_id)
        if found is None:
            continue
        ats = [s["at"] for s in found["stages"]]
        assert ats == sorted(ats)
        assert len(found["stages"]) <= 15
        assert all(isinstance(a, int) for a in ats)
        assert {s["stage"] for s in found["stages"]} <= {
            "published",
            "confirmed",
            "nacked",
            "routed",
            "unroutable",
            "returned",
            "queued",
            "delivered",
            "acked",
            "rejected",
            "requeued",
            "dead_lettered",
            "expired",
        }
        # nothing invented: a queued stage only where the broker's routing, a delivery or a tap named the queue
        sources = {s["source"] for s in found["stages"] if s["stage"] == "queued"}
        assert sources <= {"trace", "delivery", "tap"}


def test_trace_events_in_the_one_message_shape():
    book = timeline()
    death = {"count": 1, "reason": "maxlen", "queue": "short"}
    trace = {
        "kind": "publish",
        "id": "m-1",
        "exchange": "dlx",
        "routing_key": "k",
        "routed_queues": ["dlq"],
        "properties": {"headers": {"x-rabbitlens-id": "m-1", "x-death": [death]}},
        "body": {"kind": "text", "text": "hi"},
        "time": 1000.2,
    }
    book.observe("trace", trace)
    book.observe("trace", {**trace, "kind": "deliver", "queue": "dlq", "routed_queues": []})
    assert stages(book) == ["dead_lettered", "queued", "delivered"]
    assert book.get("m-1")["stages"][0]["reason"] == "maxlen"
