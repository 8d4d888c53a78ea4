"""Nothing a message contains takes a consumer down (issue 15 item 2), on the real broker.

A 4 KB body of nested JSON arrays made the body preview raise RecursionError inside the consumer's thread, which
died (the API still said ``consuming``, the broker had 0 consumers, the requeued message killed the next one), and
``POST /api/publish`` answered 500 although the message was out.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rabbit.consumer import Consumer
from tests.conftest import wait_until
from tests.integration.helpers import declare_queue

pytestmark = pytest.mark.broker

NESTED = "[" * 2000 + "]" * 2000


def consumer_state(lab, consumer_id: str) -> dict[str, Any]:
    return next(c for c in lab.get("/api/consumers").json() if c["id"] == consumer_id)


def test_a_deeply_nested_body_is_published_once_and_its_consumer_goes_on(shared_lab, amqp, unique, live):
    queue = declare_queue(amqp, unique("poison"))
    started = shared_lab.post("/api/consumers", {"queue": queue, "ack": "manual"})
    assert started.status_code == 201, started.text
    consumer_id = started.json()["id"]
    try:
        answer = shared_lab.post("/api/publish", {"routing_key": queue, "body": NESTED})
        assert answer.status_code == 200, answer.text  # the message is out: no 500 that would make a retry
        assert answer.json()["confirmed"] and answer.json()["routed"]
        published_id = answer.json()["id"]

        delivery = live.wait_for("delivery", lambda e: e["id"] == published_id)[0]
        assert delivery["body"]["kind"] == "text" and "nested deeper" in delivery["body"]["note"]
        wait_until(lambda: consumer_state(shared_lab, consumer_id)["acked"] >= 1, timeout=10, message="acked")

        after = shared_lab.post("/api/publish", {"routing_key": queue, "body": '{"next": [1, 2]}'}).json()
        live.wait_for("delivery", lambda e: e["id"] == after["id"])
        state = wait_until(
            lambda: (s := consumer_state(shared_lab, consumer_id))["acked"] >= 2 and s, timeout=10, message="2 acks"
        )
        assert state["state"] == "consuming" and state["handled"] == 2 and state["errors"] == 0
        declared = amqp.fresh_channel().queue_declare(queue, passive=True).method
        assert declared.consumer_count == 1 and declared.message_count == 0
    finally:
        shared_lab.delete(f"/api/consumers/{consumer_id}")


class FailsOnBoom(Consumer):
    """A consumer whose handling of a message with body ``boom`` fails (any fault in the lab's own code)."""

    def _delivery_event(self, method, props, body, now):
        if body == b"boom":
            raise RuntimeError("simulated fault")
        return super()._delivery_event(method, props, body, now)


def test_an_error_on_one_message_is_reported_on_its_consumer_which_goes_on(broker_url, amqp, unique):
    queue = declare_queue(amqp, unique("faulty"))
    events: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def sink(name: str, payload: dict[str, Any]) -> None:
        with lock:
            events.append((name, payload))

    consumer = FailsOnBoom(broker_url, queue, sink, ack="manual").start()
    try:
        channel = amqp.fresh_channel()
        channel.basic_publish("", queue, b"boom")
        wait_until(lambda: consumer.errors == 1 and consumer.acked == 1, timeout=10, message="the fault reported")
        assert consumer.state == "error" and "simulated fault" in consumer.error
        with lock:
            assert any(name == "consumer" and e["change"] == "error" and e["errors"] == 1 for name, e in events)
        channel.basic_publish("", queue, b"fine")
        wait_until(lambda: consumer.handled == 2 and consumer.acked == 2, timeout=10, message="the next message")
        snapshot = consumer.snapshot()
        assert snapshot["errors"] == 1
        # A message handled fine takes it back to consuming; what went wrong stays as last_error.
        assert (snapshot["state"], snapshot["error"]) == ("consuming", None)
        assert "simulated fault" in snapshot["last_error"]
        with lock:
            assert any(name == "consumer" and e["change"] == "consuming" for name, e in events)
        declared = amqp.fresh_channel().queue_declare(queue, passive=True).method
        assert declared.consumer_count == 1 and declared.message_count == 0
    finally:
        consumer.stop()


def test_a_failing_fallback_view_still_settles_the_message_once_and_counts_one_error(
    broker_url, amqp, unique, monkeypatch
):
    import rabbit.consumer as consumer_module

    real_view = consumer_module.message_view

    def view(exchange, routing_key, properties, body, **kw):
        if body == b"boom":
            raise ValueError("the fallback view failed too")
        return real_view(exchange, routing_key, properties, body, **kw)

    monkeypatch.setattr(consumer_module, "message_view", view)
    for on_message, counter in (("reject", "rejected"), ("ack", "acked")):
        settles_once(broker_url, amqp, declare_queue(amqp, unique(f"fallback-{on_message}")), on_message, counter)


def settles_once(broker_url, amqp, queue: str, on_message: str, counter: str) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    consumer = FailsOnBoom(broker_url, queue, lambda n, p: events.append((n, p)), ack="manual", on_message=on_message)
    consumer.start()
    try:
        amqp.fresh_channel().basic_publish("", queue, b"boom")
        wait_until(lambda: getattr(consumer, counter) == 1, timeout=10, message=f"the message {on_message}ed")
        assert consumer.errors == 1 and consumer.handled == 1, consumer.snapshot()
        assert any(n == "delivery" and p.get("error") for n, p in events)
        declared = amqp.fresh_channel().queue_declare(queue, passive=True).method
        assert declared.message_count == 0 and declared.consumer_count == 1  # settled, not left unacked
    finally:
        consumer.stop()


def test_an_error_on_one_message_is_reported_on_its_tap_which_goes_on(broker_url, amqp, unique):
    from rabbit.tap import Tap

    exchange = unique("tap-faulty")
    amqp.channel.exchange_declare(exchange, "fanout")
    amqp.exchanges.append(exchange)
    seen: list[dict[str, Any]] = []

    def sink(name: str, payload: dict[str, Any]) -> None:
        if payload["body"]["text"] == "boom":
            raise RuntimeError("simulated fault")  # a fault past the tap, in whatever handles its events
        seen.append(payload)

    tap = Tap(broker_url, exchange, on_event=sink).start()
    try:
        amqp.channel.basic_publish(exchange, "", b"boom")
        wait_until(lambda: tap.errors == 1, timeout=10, message="the fault reported")
        assert tap.state == "error" and "simulated fault" in tap.error
        amqp.channel.basic_publish(exchange, "", b"fine")
        wait_until(lambda: [e["body"]["text"] for e in seen] == ["fine"], timeout=10, message="the next message")
        assert tap.describe()["count"] == 2 and tap.describe()["errors"] == 1
    finally:
        tap.stop()
