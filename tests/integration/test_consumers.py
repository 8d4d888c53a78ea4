"""Consumers through the API on the real broker: knobs, exact counters, events, and one that re-attaches."""

from __future__ import annotations

from typing import Any

import pika
import pytest

from tests.conftest import wait_until
from tests.integration.helpers import LiveEvents, declare_queue

pytestmark = pytest.mark.broker


@pytest.fixture
def consumers(shared_lab):
    """start(queue, **knobs) -> id; every consumer it started is deleted after the test."""
    started: list[str] = []

    def start(queue: str, **knobs: Any) -> str:
        answer = shared_lab.post("/api/consumers", {"queue": queue, **knobs})
        assert answer.status_code == 201, answer.text
        started.append(answer.json()["id"])
        return answer.json()["id"]

    yield start
    for consumer_id in started:
        shared_lab.delete(f"/api/consumers/{consumer_id}")


def consumer_state(lab, consumer_id: str) -> dict[str, Any]:
    return next(c for c in lab.get("/api/consumers").json() if c["id"] == consumer_id)


def wait_for_counter(lab, consumer_id: str, counter: str, value: int, timeout: float = 10.0) -> dict[str, Any]:
    return wait_until(
        lambda: (state := consumer_state(lab, consumer_id))[counter] >= value and state,
        timeout=timeout,
        message=f"{consumer_id} {counter} >= {value}",
    )


def publish(lab, routing_key: str, body: str = "x", exchange: str = "", **extra: Any) -> dict[str, Any]:
    answer = lab.post("/api/publish", {"exchange": exchange, "routing_key": routing_key, "body": body, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_consumer_on_a_missing_queue_is_404(shared_lab, unique):
    answer = shared_lab.post("/api/consumers", {"queue": unique("missing")})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"
    assert all(c["queue"] != unique("missing") for c in shared_lab.get("/api/consumers").json())


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        ({"prefetch": 1001}, "prefetch"),
        ({"prefetch": -1}, "prefetch"),
        ({"work_ms": 60001}, "work_ms"),
        ({"ack": "sometimes"}, "ack"),
        ({"on_message": "explode"}, "on_message"),
        ({"ack": "auto", "on_message": "reject"}, "ack=manual"),
        ({"ack": "auto", "on_message": "nack_requeue"}, "ack=manual"),
        ({"queue": ""}, "queue"),
    ],
)
def test_invalid_consumer_knobs_get_a_clear_400(shared_lab, amqp, unique, knobs, field):
    queue = declare_queue(amqp, unique("q"))
    answer = shared_lab.post("/api/consumers", {"queue": queue, **knobs})
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["error"]["message"]


def test_a_consumer_acks_each_message_and_streams_every_delivery(shared_lab, amqp, unique, live, consumers):
    queue = declare_queue(amqp, unique("q"))
    consumer_id = consumers(queue, ack="manual", prefetch=10)
    live.wait_for("consumer", lambda e: e["id"] == consumer_id and e["change"] == "started")
    ids = [
        publish(shared_lab, queue, f'{{"n": {n}}}', properties={"content_type": "application/json"})["id"]
        for n in range(3)
    ]
    state = wait_for_counter(shared_lab, consumer_id, "acked", 3)
    assert (state["handled"], state["acked"], state["redelivered"], state["state"]) == (3, 3, 0, "consuming")
    deliveries = live.wait_for("delivery", lambda e: e["consumer_id"] == consumer_id, count=3)
    assert [d["id"] for d in deliveries] == ids
    first = deliveries[0]
    assert first["queue"] == queue
    assert first["exchange"] == ""
    assert first["routing_key"] == queue
    assert first["redelivered"] is False
    assert first["delivery_tag"] == 1
    assert first["properties"]["content_type"] == "application/json"
    assert first["body"]["kind"] == "json"
    assert first["body"]["json"] == '{\n  "n": 0\n}'
    assert first["latency_ms"] >= 0
    acks = live.wait_for("ack", lambda e: e["consumer_id"] == consumer_id, count=3)
    assert [a["id"] for a in acks] == ids
    assert amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count == 0


def test_deleting_a_consumer_stops_it_and_leaves_new_messages_in_the_queue(shared_lab, amqp, unique, live):
    queue = declare_queue(amqp, unique("q"))
    consumer_id = shared_lab.post("/api/consumers", {"queue": queue}).json()["id"]
    assert consumer_state(shared_lab, consumer_id)["state"] == "consuming"
    answer = shared_lab.delete(f"/api/consumers/{consumer_id}")
    assert answer.status_code == 200
    assert answer.json()["state"] == "stopped"
    assert all(c["id"] != consumer_id for c in shared_lab.get("/api/consumers").json())
    assert shared_lab.delete(f"/api/consumers/{consumer_id}").status_code == 404
    live.wait_for("consumer", lambda e: e["id"] == consumer_id and e["change"] == "stopped")
    publish(shared_lab, queue, "stays")
    assert amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count == 1


def test_reject_drops_the_message_and_nack_requeue_brings_it_back_redelivered(
    shared_lab, amqp, unique, live, consumers
):
    rejected_queue = declare_queue(amqp, unique("rejected"))
    rejecter = consumers(rejected_queue, on_message="reject")
    message = publish(shared_lab, rejected_queue, "no thanks")
    state = wait_for_counter(shared_lab, rejecter, "rejected", 1)
    assert (state["handled"], state["acked"]) == (1, 0)
    nack = live.wait_for("nack", lambda e: e["id"] == message["id"])[0]
    assert (nack["kind"], nack["requeue"]) == ("reject", False)
    assert amqp.fresh_channel().queue_declare(rejected_queue, passive=True).method.message_count == 0

    requeue_queue = declare_queue(amqp, unique("requeued"))
    nacker = consumers(requeue_queue, on_message="nack_requeue", prefetch=1, work_ms=50)
    message = publish(shared_lab, requeue_queue, "again")
    state = wait_for_counter(shared_lab, nacker, "redelivered", 2)
    assert state["nacked"] >= 2
    redelivered = live.wait_for("delivery", lambda e: e["id"] == message["id"] and e["redelivered"])
    assert redelivered[0]["consumer_id"] == nacker


def test_one_consumer_working_long_does_not_stall_another(shared_lab, amqp, unique, consumers):
    slow_queue = declare_queue(amqp, unique("slow"))
    fast_queue = declare_queue(amqp, unique("fast"))
    slow = consumers(slow_queue, work_ms=20_000)
    fast = consumers(fast_queue)
    publish(shared_lab, slow_queue, "long job")
    wait_for_counter(shared_lab, slow, "handled", 1)
    for n in range(5):
        publish(shared_lab, fast_queue, str(n))
    wait_for_counter(shared_lab, fast, "acked", 5)
    assert consumer_state(shared_lab, slow)["acked"] == 0  # still working on its one message
    # Deleting it mid-work leaves the message unacked, so the broker keeps it.
    shared_lab.delete(f"/api/consumers/{slow}")
    wait_until(
        lambda: amqp.fresh_channel().queue_declare(slow_queue, passive=True).method.message_count == 1,
        message="the interrupted message back in its queue",
    )


def test_a_burst_is_counted_exactly_by_the_consumer_and_the_events(shared_lab, amqp, unique, live, consumers):
    queue = declare_queue(amqp, unique("q"))
    consumer_id = consumers(queue, ack="auto")
    burst = publish(shared_lab, queue, "b", count=1000)
    assert burst["counts"]["routed"] == 1000
    state = wait_for_counter(shared_lab, consumer_id, "handled", 1000, timeout=30)
    assert (state["handled"], state["acked"]) == (1000, 1000)
    deliveries = live.wait_for("delivery", lambda e: e["consumer_id"] == consumer_id, count=1000, timeout=30)
    assert len({d["id"] for d in deliveries}) == 1000
    snapshot = wait_until(
        lambda: (
            (lists := live.of("consumers")) and any(c["id"] == consumer_id and c["handled"] == 1000 for c in lists[-1])
        ),
        message="a consumers list with the exact count",
    )
    assert snapshot


@pytest.mark.private_node
def test_consumers_reattach_after_a_broker_restart(private_node, lab_factory, unique):
    lab = lab_factory(private_node.amqp_url)
    queue = unique("durable")
    with pika.BlockingConnection(pika.URLParameters(private_node.amqp_url)) as connection:
        connection.channel().queue_declare(queue, durable=True)
    events = LiveEvents(lab.base_url)
    try:
        consumer_id = lab.post("/api/consumers", {"queue": queue}).json()["id"]
        private_node.restart()
        events.wait_for("consumer", lambda e: e["id"] == consumer_id and e["change"] == "reattached", timeout=30)
        state = consumer_state(lab, consumer_id)
        assert (state["state"], state["attachments"]) == ("consuming", 2)
        wait_until(
            lambda: lab.post("/api/publish", {"routing_key": queue, "body": "after"}).ok,
            timeout=20,
            message="publishing works again",
        )
        wait_for_counter(lab, consumer_id, "acked", 1)
    finally:
        events.close()
