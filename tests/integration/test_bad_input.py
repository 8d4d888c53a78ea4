"""Bad input, route by route: each case gets a clear 4xx JSON error and the lab stays healthy (issue 7's list)."""

import json

import pytest

pytestmark = pytest.mark.broker

DEEP = {"level": 1}
for _ in range(20):
    DEEP = {"level": DEEP}

LONG_NAME = "é" * 128  # 256 bytes of UTF-8, one over the AMQP short-string limit

# (case name, method, path, JSON body or raw bytes, expected HTTP status, a word the message must contain)
CASES = [
    ("malformed JSON", "POST", "/api/exchanges", b'{"name": "x", "type": ', 400, "JSON"),
    ("JSON that is not an object", "POST", "/api/queues", b"[1, 2, 3]", 400, "object"),
    ("wrong type for a field", "POST", "/api/exchanges", {"name": 5, "type": "direct"}, 400, "name"),
    ("wrong type for a flag", "POST", "/api/queues", {"name": "q", "durable": "yes please"}, 400, "durable"),
    ("unknown field", "POST", "/api/exchanges", {"name": "x", "type": "direct", "colour": "red"}, 400, "colour"),
    ("unknown exchange type", "POST", "/api/exchanges", {"name": "x", "type": "roundabout"}, 400, "type"),
    ("empty exchange name", "POST", "/api/exchanges", {"name": "", "type": "direct"}, 400, "name"),
    ("exchange name over 255 bytes", "POST", "/api/exchanges", {"name": LONG_NAME, "type": "fanout"}, 400, "255"),
    ("queue name over 255 bytes", "POST", "/api/queues", {"name": LONG_NAME}, 400, "255"),
    ("name that is not valid UTF-8 (lone surrogate)", "POST", "/api/queues", b'{"name": "bad\\ud800name"}', 400, ""),
    ("raw bytes that are not UTF-8", "POST", "/api/queues", b'{"name": "\xff\xfe"}', 400, ""),
    (
        "binding key over 255 bytes",
        "POST",
        "/api/bindings",
        {"source": "amq.topic", "destination": "q", "destination_type": "queue", "routing_key": "k" * 256},
        400,
        "255",
    ),
    (
        "routing key over 255 bytes",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "k" * 256, "body": "x"},
        400,
        "255",
    ),
    (
        "body over the 1 MiB limit",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x" * (1024 * 1024 + 1)},
        400,
        "body",
    ),
    (
        "base64 body that is not base64",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "***", "body_encoding": "base64"},
        400,
        "base64",
    ),
    (
        "burst count over the limit",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x", "count": 10_001},
        400,
        "count",
    ),
    (
        "burst of more bytes than the burst limit",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x" * 8000, "count": 10_000},
        400,
        "burst limit",
    ),
    (
        "header table nested too deep",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x", "properties": {"headers": {"deep": DEEP}}},
        400,
        "deep",
    ),
    (
        "expiration that is not a number string",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x", "properties": {"expiration": "soon"}},
        400,
        "expiration",
    ),
    (
        "priority over 255",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x", "properties": {"priority": 256}},
        400,
        "priority",
    ),
    (
        "negative priority",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x", "properties": {"priority": -1}},
        400,
        "priority",
    ),
    (
        "delivery mode 3",
        "POST",
        "/api/publish",
        {"exchange": "", "routing_key": "nowhere", "body": "x", "properties": {"delivery_mode": 3}},
        400,
        "delivery_mode",
    ),
    ("prefetch over 1000", "POST", "/api/consumers", {"queue": "q", "prefetch": 1001}, 400, "prefetch"),
    ("work time over 60 s", "POST", "/api/consumers", {"queue": "q", "work_ms": 60_001}, 400, "work_ms"),
    ("fib n negative", "POST", "/api/rpc/call", {"n": -1}, 400, "n"),
    ("fib n far over the bound", "POST", "/api/rpc/call", {"n": 10**12}, 400, "n"),
    ("fib n as text", "POST", "/api/rpc/call", {"n": "30"}, 400, "n"),
    ("RPC burst calls over the limit", "POST", "/api/rpc/burst", {"n": 1, "calls": 10**9}, 400, "calls"),
    (
        "RPC burst concurrency over 256",
        "POST",
        "/api/rpc/burst",
        {"n": 1, "calls": 1, "concurrency": 257},
        400,
        "concurrency",
    ),
    ("too many RPC servers", "POST", "/api/rpc/servers", {"count": 9}, 400, "count"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gets_a_clear_error_and_the_lab_stays_healthy(shared_lab, method, path, body, status, word):
    before = shared_lab.get("/api/health").json()["broker"]
    if isinstance(body, bytes):
        response = shared_lab.post(path, data=body, headers={"Content-Type": "application/json"})
    else:
        response = shared_lab.post(path, data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert error["code"] in ("INVALID", "invalid")
    assert error["message"]
    assert word.lower() in error["message"].lower() or word.lower() in json.dumps(error).lower()
    after = shared_lab.get("/api/health").json()["broker"]
    assert after["connected"] is True
    assert after["since"] == before["since"], "the broker link dropped"
