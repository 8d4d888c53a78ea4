"""POST /api/publish on the real broker, through a real lab server, with a real Socket.IO client."""

from __future__ import annotations

import base64

import pika
import pytest

from tests.integration.helpers import declare_queue, get_one

pytestmark = pytest.mark.broker


def test_publish_to_a_queue_is_confirmed_routed_and_carries_its_lab_id(shared_lab, amqp, unique, live):
    queue = declare_queue(amqp, unique("q"))
    answer = shared_lab.post("/api/publish", {"exchange": "", "routing_key": queue, "body": "hello"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["confirmed"] is True
    assert result["routed"] is True
    assert result["returned"] is None
    props, body = get_one(amqp, queue)
    assert body == b"hello"
    assert props.headers["x-rabbitlens-id"] == result["id"]
    published = live.wait_for("published", lambda e: e["id"] == result["id"])[0]
    assert published["routing_key"] == queue
    assert published["routed"] is True


def test_every_basic_property_reaches_the_consumer(shared_lab, amqp, unique):
    queue = declare_queue(amqp, unique("q"))
    properties = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": {"tenant": "t1", "n": 7, "flag": True, "nested": {"a": [1, "b"]}},
        "delivery_mode": 2,
        "priority": 5,
        "correlation_id": "corr-1",
        "reply_to": "replies-here",
        "expiration": "60000",
        "message_id": "msg-1",
        "timestamp": 1700000000,
        "type": "order.created",
        "user_id": "guest",
        "app_id": "rabbitlens-test",
    }
    answer = shared_lab.post("/api/publish", {"routing_key": queue, "body": '{"a": 1}', "properties": properties})
    assert answer.status_code == 200, answer.text
    props, body = get_one(amqp, queue)
    assert body == b'{"a": 1}'
    for name, value in properties.items():
        if name == "headers":
            assert props.headers["tenant"] == "t1"
            assert props.headers["n"] == 7
            assert props.headers["flag"] is True
            assert props.headers["nested"] == {"a": [1, "b"]}
        elif name == "timestamp":
            assert props.timestamp == value
        else:
            assert getattr(props, name) == value, name


def test_a_base64_body_is_published_as_its_bytes(shared_lab, amqp, unique):
    queue = declare_queue(amqp, unique("q"))
    raw = bytes(range(256))
    answer = shared_lab.post(
        "/api/publish",
        {"routing_key": queue, "body": base64.b64encode(raw).decode(), "body_encoding": "base64"},
    )
    assert answer.status_code == 200, answer.text
    assert get_one(amqp, queue)[1] == raw


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"properties": {"expiration": 60000}}, "expiration"),
        ({"properties": {"expiration": "1m"}}, "expiration"),
        ({"properties": {"priority": 256}}, "priority"),
        ({"properties": {"delivery_mode": 3}}, "delivery_mode"),
        ({"properties": {"colour": "red"}}, "colour"),
        ({"properties": {"headers": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}}}}, "head"),
        ({"properties": {"headers": {"pi": 3.14}}}, "head"),
        ({"routing_key": "k" * 256}, "routing_key"),
        ({"body": "x" * (1024 * 1024 + 1)}, "body"),
        ({"body": "not base64!", "body_encoding": "base64"}, "base64"),
        ({"count": 0}, "count"),
        ({"count": 10_001}, "count"),
        ({"mandatory": "yes"}, "mandatory"),
    ],
)
def test_invalid_publish_requests_get_a_clear_400(shared_lab, unique, change, field):
    request = {"exchange": "", "routing_key": unique("nowhere"), "body": "x", **change}
    answer = shared_lab.post("/api/publish", request)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID"
    assert field in error["message"]


def test_mandatory_unroutable_message_comes_back_as_returned(shared_lab, amqp, unique, live):
    exchange = unique("direct")
    amqp.fresh_channel().exchange_declare(exchange, "direct")
    amqp.exchanges.append(exchange)
    answer = shared_lab.post(
        "/api/publish", {"exchange": exchange, "routing_key": "nobody", "body": "lost?", "mandatory": True}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["confirmed"] is True
    assert result["routed"] is False
    assert result["returned"]["reply_code"] == 312
    assert result["returned"]["reply_text"] == "NO_ROUTE"
    assert result["returned"]["exchange"] == exchange
    returned = live.wait_for("returned", lambda e: e["id"] == result["id"])[0]
    assert returned["routing_key"] == "nobody"


def test_unroutable_without_mandatory_is_dropped_not_returned(shared_lab, amqp, unique, live):
    exchange = unique("fanout")
    amqp.fresh_channel().exchange_declare(exchange, "fanout")
    amqp.exchanges.append(exchange)
    result = shared_lab.post("/api/publish", {"exchange": exchange, "body": "into the void"}).json()
    assert result["routed"] is False
    assert result["returned"] is None
    assert result["dropped"] is True
    published = live.wait_for("published", lambda e: e["id"] == result["id"])[0]
    assert published["dropped"] is True
    assert live.of("returned", lambda e: e["id"] == result["id"]) == []


def test_publish_to_a_missing_exchange_is_404_and_the_next_publish_works(shared_lab, amqp, unique):
    answer = shared_lab.post("/api/publish", {"exchange": unique("missing"), "routing_key": "k", "body": "x"})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "NOT_FOUND"
    assert error["reply_code"] == 404
    assert "no exchange" in error["message"]
    queue = declare_queue(amqp, unique("q"))
    again = shared_lab.post("/api/publish", {"routing_key": queue, "body": "after"})
    assert again.status_code == 200
    assert again.json()["confirmed"] is True
    assert get_one(amqp, queue)[1] == b"after"


def test_a_burst_publishes_every_message_and_reports_progress(shared_lab, amqp, unique, live):
    queue = declare_queue(amqp, unique("q"))
    answer = shared_lab.post("/api/publish", {"routing_key": queue, "body": "load", "count": 450})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["count"] == 450
    assert result["counts"]["published"] == 450
    assert result["counts"]["confirmed"] == 450
    assert result["counts"]["routed"] == 450
    assert result["confirmed"] is True
    assert result["ids"]["last"] == f"{result['id']}-450"
    assert amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count == 450
    progress = live.wait_for("publish_progress", lambda p: p["id"] == result["id"] and p["done"] == 450)
    assert progress[-1]["routed"] == 450
    dones = [p["done"] for p in live.of("publish_progress", lambda p: p["id"] == result["id"])]
    assert dones == sorted(dones)
    assert len(dones) >= 2
    live.wait_for("published", lambda e: e["id"].startswith(result["id"] + "-"), count=450)


def test_a_plain_pika_consumer_sees_the_lab_headers_next_to_its_own(shared_lab, amqp, unique):
    queue = declare_queue(amqp, unique("q"))
    shared_lab.post("/api/publish", {"routing_key": queue, "body": "x", "properties": {"headers": {"mine": "1"}}})
    props, _ = get_one(amqp, queue)
    assert props.headers["mine"] == "1"
    assert props.headers["x-rabbitlens-id"].startswith("m-")
    assert isinstance(props.headers["x-rabbitlens-published"], int)
    assert isinstance(props, pika.BasicProperties)
