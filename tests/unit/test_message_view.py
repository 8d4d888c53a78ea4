"""One shape for a message: a delivery, a tapped copy and a trace copy carry the same fields (pure)."""

from __future__ import annotations

import pika
import pika.spec

from rabbit.message_view import ID_HEADER, delivered_view, lab_id, message_view
from rabbit.properties import body_preview
from rabbit.trace import parse_trace_message

SHARED = {"exchange", "routing_key", "redelivered", "properties", "body", "id"}
BODY = {"kind", "text", "json", "hex", "size", "truncated"}


def deliver(redelivered: bool = False) -> pika.spec.Basic.Deliver:
    return pika.spec.Basic.Deliver("ctag", 7, redelivered, "orders", "orders.new")


def test_a_delivered_message_has_the_shared_fields_and_its_lab_id():
    props = pika.BasicProperties(content_type="application/json", headers={ID_HEADER: "m-1", "k": 7})
    view = delivered_view(deliver(True), props, b'{"n": 1}')
    assert set(view) == SHARED
    assert view["exchange"] == "orders" and view["routing_key"] == "orders.new" and view["redelivered"] is True
    assert view["id"] == "m-1"
    assert view["properties"]["headers"] == {ID_HEADER: "m-1", "k": 7}
    assert view["body"] == body_preview(b'{"n": 1}', "application/json")
    assert view["body"]["kind"] == "json" and set(view["body"]) >= BODY


def test_a_trace_copy_has_the_same_fields_as_a_delivery():
    headers = {
        "exchange_name": "orders",
        "routing_keys": ["orders.new"],
        "routed_queues": ["q1"],
        "properties": {"content_type": "text/plain", "headers": {ID_HEADER: "m-2"}},
        "connection": "127.0.0.1:1 -> 127.0.0.1:5672",
    }
    event = parse_trace_message("publish.orders", headers, b"hello", 1.0)
    assert event is not None
    assert set(event) >= SHARED
    assert event["kind"] == "publish" and event["redelivered"] is None
    assert event["id"] == "m-2"
    assert event["body"] == body_preview(b"hello", "text/plain")
    delivered = parse_trace_message("deliver.q1", {**headers, "redelivered": 1}, b"hello", 1.0)
    assert delivered is not None and delivered["queue"] == "q1" and delivered["redelivered"] is True


def test_binary_bodies_are_the_same_preview_everywhere():
    body = b"\xff\x00\x10"
    view = message_view("", "k", {}, body, redelivered=False, limit=1024)
    assert view["body"]["kind"] == "binary" and view["body"]["text"] is None
    assert "ff 00 10" in view["body"]["hex"]
    trace = parse_trace_message("publish.", {"properties": {}}, body, 0.0)
    assert trace is not None and trace["body"] == view["body"]


def test_the_lab_id_is_a_string_or_nothing():
    assert lab_id({ID_HEADER: "m-3"}) == "m-3"
    assert lab_id({ID_HEADER: 42}) is None
    assert lab_id({ID_HEADER: {"base64": "AA=="}}) is None
    assert lab_id(None) is None and lab_id("not a table") is None


def test_odd_properties_of_a_trace_copy_never_break_its_view():
    event = parse_trace_message("publish.x", {"properties": {"content_type": 5, "headers": [1, 2]}}, b"{}", 0.0)
    assert event is not None
    assert event["properties"]["headers"] == {} and event["id"] is None
    assert event["body"]["kind"] == "json"
