"""Issue 15, items 1, 4 and 7 through a real lab process: one validation of names (255 bytes of UTF-8, no control
characters) and tables (encodable, within the negotiated frame_max) on every route, so no request can wedge a
connection owner or make the broker drop a connection; the next request answers at once and health stays true."""

import time

import pytest

pytestmark = pytest.mark.broker

CJK_86 = "兔" * 86  # 86 characters, 258 bytes of UTF-8
BIG = "x" * 140_000  # a table value over one 131072-byte frame


def assert_fast_and_healthy(lab, before=None):
    """The next request answers in under a second, and health says ok with the link's connection unchanged."""
    started = time.monotonic()
    health = lab.get("/api/health")
    elapsed = time.monotonic() - started
    assert health.status_code == 200
    assert elapsed < 1.0, f"health took {elapsed:.2f} s"
    body = health.json()
    assert body["status"] == "ok", body
    assert body["broker"]["connected"] is True
    assert body["broker"].get("stuck", False) is False and body.get("stuck", []) == []
    if before is not None:  # the same connection: not dropped, not replaced
        assert body["broker"]["since"] == before["since"]
        assert body["broker"].get("recoveries") == before.get("recoveries")
    return body["broker"]


def bad_names(good: str) -> list[tuple[str, str]]:
    return [
        ("LF", "a\nb"),
        ("CR at the end", f"{good}\r"),
        ("NUL", "a\x00b"),
        ("tab", "a\tb"),
        ("86 CJK characters (258 bytes)", CJK_86),
    ]


def route_cases(unique):
    queue = unique("names-q")
    return queue, [
        ("queue name", "/api/queues", lambda v: {"name": v}),
        ("exchange name", "/api/exchanges", lambda v: {"name": v, "type": "direct"}),
        (
            "binding key",
            "/api/bindings",
            lambda v: {"source": "amq.direct", "destination": queue, "destination_type": "queue", "routing_key": v},
        ),
        (
            "binding destination",
            "/api/bindings",
            lambda v: {"source": "amq.direct", "destination": v, "destination_type": "queue", "routing_key": "k"},
        ),
        (
            "binding argument name",
            "/api/bindings",
            lambda v: {
                "source": "amq.headers",
                "destination": queue,
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {v: 1},
            },
        ),
        ("publish exchange", "/api/publish", lambda v: {"exchange": v, "routing_key": "k", "body": "x"}),
        ("publish routing key", "/api/publish", lambda v: {"exchange": "", "routing_key": v, "body": "x"}),
        (
            "publish reply_to",
            "/api/publish",
            lambda v: {"exchange": "", "routing_key": queue, "body": "x", "properties": {"reply_to": v}},
        ),
        (
            "publish header name",
            "/api/publish",
            lambda v: {"exchange": "", "routing_key": queue, "body": "x", "properties": {"headers": {v: "1"}}},
        ),
        ("consumer queue", "/api/consumers", lambda v: {"queue": v}),
        ("tap exchange", "/api/taps", lambda v: {"exchange": v}),
        ("tap binding key", "/api/taps", lambda v: {"exchange": "amq.topic", "binding_key": v}),
        ("tap argument name", "/api/taps", lambda v: {"exchange": "amq.headers", "arguments": {v: 1}}),
        ("RPC call queue", "/api/rpc/call", lambda v: {"n": 5, "queue": v}),
        ("RPC burst queue", "/api/rpc/burst", lambda v: {"n": 5, "calls": 2, "queue": v}),
        ("fib server queue", "/api/rpc/servers", lambda v: {"queue": v}),
        ("route prediction exchange", "/api/route", lambda v: {"exchange": v, "routing_key": "k"}),
    ]


def test_every_route_refuses_control_characters_and_oversized_names_and_nothing_wedges(shared_lab, amqp, unique):
    queue, cases = route_cases(unique)
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    before = assert_fast_and_healthy(shared_lab)
    rpc_before = shared_lab.get("/api/rpc/status").json()["client"]
    try:
        for what, path, body in cases:
            for label, bad in bad_names(queue):
                response = shared_lab.post(path, json=body(bad))
                assert response.status_code == 400, (what, label, response.status_code, response.text)
                message = response.json()["error"]["message"]
                if label.startswith("86 CJK"):
                    assert "bytes" in message, (what, message)
                else:
                    assert "control character" in message, (what, label, message)
        # The same through a URL: DELETE /api/queues/a%0Ab
        assert shared_lab.delete("/api/queues/a%0Ab").status_code == 400
        assert shared_lab.post("/api/queues/a%0Db/purge").status_code == 400
        assert_fast_and_healthy(shared_lab, before)
        started = time.monotonic()
        declared = shared_lab.post("/api/queues", json={"name": unique("names-after")})
        assert declared.status_code == 201 and time.monotonic() - started < 1.0
        shared_lab.delete(f"/api/queues/{declared.json()['name']}")
        rpc = shared_lab.get("/api/rpc/status").json()["client"]
        assert rpc["state"] == "connected" and rpc["stuck"] is False
        assert rpc["reconnects"] == rpc_before["reconnects"]
        started = time.monotonic()
        no_server = shared_lab.post("/api/rpc/call", json={"n": 3, "queue": queue, "timeout_s": 1})
        assert no_server.status_code == 504 and time.monotonic() - started < 1.0  # 0 consumers: at once
        servers = shared_lab.get("/api/rpc/servers").json()["servers"]
        assert not any(s["queue"] != "rpc_queue" and s["state"] == "starting" for s in servers)
    finally:
        pass


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 1.5, 1e308])
def test_tap_arguments_are_validated(shared_lab, value):
    before = assert_fast_and_healthy(shared_lab)
    tap = {"exchange": "amq.headers", "arguments": {"x-match": "any", "a": value}}
    response = shared_lab.post("/api/taps", json=tap)
    assert response.status_code == 400, response.text
    assert "tap arguments" in response.json()["error"]["message"]
    assert_fast_and_healthy(shared_lab, before)


def test_oversized_tables_are_refused_with_the_limit_and_no_connection_drops(shared_lab, amqp, unique):
    queue = unique("big-table")
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    before = assert_fast_and_healthy(shared_lab)
    publisher_before = shared_lab.get("/api/stats").json()
    cases = [
        ("queue arguments", "/api/queues", {"name": unique("big-q"), "arguments": {"x-blob": BIG}}),
        ("exchange arguments", "/api/exchanges", {"name": unique("big-x"), "type": "direct", "arguments": {"b": BIG}}),
        (
            "binding arguments",
            "/api/bindings",
            {
                "source": "amq.headers",
                "destination": queue,
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {"x-match": "any", "blob": BIG},
            },
        ),
        (
            "headers",
            "/api/publish",
            {"exchange": "", "routing_key": queue, "body": "x", "properties": {"headers": {"blob": BIG}}},
        ),
        (
            "headers",
            "/api/publish",
            {"exchange": "", "routing_key": queue, "body": "x", "count": 3, "properties": {"headers": {"blob": BIG}}},
        ),
        ("tap arguments", "/api/taps", {"exchange": "amq.headers", "arguments": {"x-match": "any", "blob": BIG}}),
    ]
    try:
        for what, path, body in cases:
            response = shared_lab.post(path, json=body)
            assert response.status_code == 400, (what, response.status_code, response.text)
            message = response.json()["error"]["message"]
            assert message.startswith(f"{what} take "), message
            assert "frame_max is 131072" in message and "at most 126976 bytes fit" in message, message
        assert_fast_and_healthy(shared_lab, before)
        # Nothing reached the broker: no message, no binding, and the publisher's connection is the same.
        assert amqp.channel.queue_declare(queue, passive=True).method.message_count == 0
        assert shared_lab.get("/api/taps").json() == [] or all(
            t["exchange"] != "amq.headers" for t in shared_lab.get("/api/taps").json()
        )
        after = shared_lab.post("/api/publish", json={"exchange": "", "routing_key": queue, "body": "fits"})
        assert after.status_code == 200 and after.json()["routed"] is True
        assert shared_lab.get("/api/stats").json()["process"]["open_fds"] <= publisher_before["process"]["open_fds"] + 2
        # A table just under the limit goes through.
        fits = {"x-match": "any", "blob": "y" * 100_000}
        bound = shared_lab.post(
            "/api/bindings",
            json={"source": "amq.headers", "destination": queue, "destination_type": "queue", "arguments": fits},
        )
        assert bound.status_code == 201, bound.text
        assert_fast_and_healthy(shared_lab, before)
    finally:
        pass
