"""RPC bursts end (issue 15 item 8), requests expire (issue 17 item 6), float replies are flagged (issue 17 item 7).

Against a real lab process and the real broker; the "servers" here are the test's own consumers: one that never
answers (a wedged server), and one that answers as the Node tutorial's server does (floating point).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
import pytest
import socketio

from tests.conftest import wait_until
from tests.integration.helpers import declare_queue


class ScriptedServer(threading.Thread):
    """Consumes ``queue`` on its own connection; ``answer(body)`` gives the reply body (None: never reply)."""

    def __init__(self, url: str, queue: str, answer: Callable[[bytes], bytes | None]) -> None:
        super().__init__(daemon=True)
        self.url, self.queue, self.answer = url, queue, answer
        self.requests: list[tuple[pika.BasicProperties, bytes]] = []
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        ch = conn.channel()

        def on_message(channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
            self.requests.append((props, body))
            reply = self.answer(body)
            if reply is None:
                return  # holds it unacked, as a wedged server would
            channel.basic_publish("", props.reply_to, reply, pika.BasicProperties(correlation_id=props.correlation_id))
            channel.basic_ack(method.delivery_tag)

        ch.basic_consume(self.queue, on_message)
        self.ready.set()
        while not self.stopping.is_set():
            conn.process_data_events(time_limit=0.05)
        conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


@pytest.fixture
def serve(broker_url: str, amqp, unique):
    servers: list[ScriptedServer] = []

    def start(answer: Callable[[bytes], bytes | None]) -> tuple[str, ScriptedServer]:
        queue = declare_queue(amqp, unique(f"rpc-{len(servers)}"))
        server = ScriptedServer(broker_url, queue, answer)
        server.start()
        assert server.ready.wait(10)
        servers.append(server)
        return queue, server

    yield start
    for server in servers:
        server.stop()


def node_tutorial(body: bytes) -> bytes:
    """fib as the Node tutorial's server computes it: in IEEE doubles, printed by Number.prototype.toString."""
    n = int(body)
    a, b = 0.0, 1.0
    for _ in range(n):
        a, b = b, a + b
    if a == float("inf"):
        return b"Infinity"
    return repr(a).encode() if a >= 1e21 else str(int(a)).encode()


class Recorder:
    """A Socket.IO client of the lab that keeps every event of the given names (batches unpacked)."""

    def __init__(self, base_url: str, names: tuple[str, ...]) -> None:
        self.events: list[tuple[str, Any]] = []
        self.client = socketio.Client()
        for name in names:
            self.client.on(name, lambda data, name=name: self.events.append((name, data)))
        self.client.on("batch", lambda batch: self.events.extend((e["event"], e["data"]) for e in batch["events"]))
        self.client.connect(base_url, transports=["websocket"])

    def of(self, name: str) -> list[Any]:
        return [data for event, data in list(self.events) if event == name]


def in_background(fn: Callable[[], Any]):
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


# ----------------------------------------------------------------------------- expiration
def test_requests_carry_their_timeout_as_expiration(shared_lab, serve):
    queue, server = serve(lambda body: b"55")
    events = Recorder(shared_lab.base_url, ("rpc_request",))
    try:
        answer = shared_lab.post("/api/rpc/call", {"n": 10, "queue": queue, "timeout_s": 1.5})
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"] == "55" and answer.json()["expiration"] == "1500"
        assert server.requests[-1][0].expiration == "1500"  # what the broker got
        sent = wait_until(lambda: [e for e in events.of("rpc_request") if e["queue"] == queue])
        assert sent[0]["expiration"] == "1500"

        answer = shared_lab.post("/api/rpc/call", {"n": 10, "queue": queue, "timeout_s": 1.5, "expire": False})
        assert answer.status_code == 200, answer.text
        assert answer.json()["expiration"] is None
        assert server.requests[-1][0].expiration is None
    finally:
        events.client.disconnect()


def test_an_expired_request_does_not_wait_for_the_next_server(shared_lab, amqp, unique):
    """A request nobody took within its timeout leaves the queue: no server works on it after the caller gave up."""
    queue = declare_queue(amqp, unique("rpc-expire"))
    channel = amqp.fresh_channel()
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue, lambda *args: None)  # a busy server: holds one request, takes no other
    for _ in range(2):  # the first is held by the server; the second waits in the queue
        assert shared_lab.post("/api/rpc/call", {"n": 3, "queue": queue, "timeout_s": 0.3}).status_code == 504
    wait_until(
        lambda: amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count == 0,
        timeout=5,
        message="the unanswered request to expire from the queue",
    )


# ----------------------------------------------------------------------------- non-integer replies
def test_float_replies_are_flagged_not_shown_as_results(shared_lab, serve):
    queue, _ = serve(node_tutorial)
    events = Recorder(shared_lab.base_url, ("rpc_reply",))
    try:
        exact = shared_lab.post("/api/rpc/call", {"n": 30, "queue": queue}).json()
        assert exact["result"] == "832040" and exact["not_integer"] is None

        big = shared_lab.post("/api/rpc/call", {"n": 1000, "queue": queue})
        assert big.status_code == 200, big.text
        body = big.json()
        assert body["result"] is None
        assert body["reply"] == "4.346655768693743e+208"
        assert body["not_integer"] == "not an exact integer: the server used floating point"

        rounded = shared_lab.post("/api/rpc/call", {"n": 80, "queue": queue}).json()  # exact: ...685
        assert rounded["result"] is None and rounded["reply"] == "23416728348467684" and rounded["not_integer"]

        infinite = shared_lab.post("/api/rpc/call", {"n": 1500, "queue": queue}).json()
        assert infinite["result"] is None and infinite["reply"] == "Infinity" and infinite["not_integer"]

        replies = wait_until(lambda: [e for e in events.of("rpc_reply") if e["queue"] == queue and e["n"] == 1000])
        assert replies[0]["not_integer"] and replies[0]["result"] is None
        assert replies[0]["reply"] == "4.346655768693743e+208"

        summary = shared_lab.post("/api/rpc/burst", {"ns": [1000, 10], "calls": 20, "queue": queue}).json()
        assert summary["ok"] == 20 and summary["not_integer"] == 10
    finally:
        events.client.disconnect()


# ----------------------------------------------------------------------------- bursts end
def test_a_running_burst_is_listed_and_cancelled_by_delete(shared_lab, serve):
    queue, _ = serve(lambda body: None)  # never answers
    burst = in_background(
        lambda: shared_lab.post(
            "/api/rpc/burst", {"n": 5, "calls": 1000, "concurrency": 4, "queue": queue, "timeout_s": 120}
        )
    )
    listed = wait_until(
        lambda: [
            b for b in shared_lab.get("/api/rpc/bursts").json()["bursts"] if b["queue"] == queue and b["in_flight"]
        ],
        message="the burst in GET /api/rpc/bursts",
    )
    running = listed[0]
    assert running["calls"] == 1000 and running["in_flight"] == 4 and running["timeout_s"] == 120
    assert running["cancel_on_disconnect"] is False and running["max_s"] > 0
    started = time.monotonic()
    cancelled = shared_lab.delete(f"/api/rpc/bursts/{running['burst_id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled"] and cancelled.json()["burst_id"] == running["burst_id"]
    answer = burst.result(timeout=10)
    assert time.monotonic() - started < 5
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["burst_id"] == running["burst_id"]
    assert "DELETE" in summary["cancelled"] and summary["cancelled_calls"] == 1000 - summary["done"]
    assert summary["in_flight"] == 0
    assert not [b for b in shared_lab.get("/api/rpc/bursts").json()["bursts"] if b["queue"] == queue]
    assert shared_lab.delete(f"/api/rpc/bursts/{running['burst_id']}").status_code == 404
    # the burst's slot is free again
    quick = shared_lab.post("/api/rpc/burst", {"n": 1, "calls": 1, "queue": queue, "timeout_s": 0.2})
    assert quick.status_code == 200 and quick.json()["timeouts"] == 1


def test_a_burst_ends_when_the_page_that_started_it_goes(shared_lab, serve):
    queue, _ = serve(lambda body: None)
    page = socketio.Client()
    page.connect(shared_lab.base_url, transports=["websocket"])
    sid = page.get_sid()
    burst = in_background(
        lambda: shared_lab.post(
            "/api/rpc/burst", {"n": 5, "calls": 500, "concurrency": 2, "queue": queue, "timeout_s": 120, "sid": sid}
        )
    )
    listed = wait_until(lambda: [b for b in shared_lab.get("/api/rpc/bursts").json()["bursts"] if b["queue"] == queue])
    assert listed[0]["cancel_on_disconnect"] is True
    assert sid not in str(listed)  # the session id is not handed to everybody
    page.disconnect()
    answer = burst.result(timeout=10)
    assert answer.status_code == 200, answer.text
    assert "page that started it went away" in answer.json()["cancelled"]


def test_a_burst_nobody_serves_says_so_with_its_id(shared_lab, unique):
    answer = shared_lab.post("/api/rpc/burst", {"n": 1, "calls": 3, "queue": unique("rpc-nobody")})
    assert answer.status_code == 504
    error = answer.json()["error"]
    assert error["code"] == "timeout" and error["burst_id"].startswith("b")


def test_a_burst_with_an_unknown_sid_is_refused(shared_lab):
    answer = shared_lab.post("/api/rpc/burst", {"n": 1, "calls": 1, "sid": "no-such-session"})
    assert answer.status_code == 400
    assert "no Socket.IO session" in answer.json()["error"]["message"]


def test_a_burst_is_bounded_in_time(lab_factory, broker_url, serve):
    queue, _ = serve(lambda body: None)
    lab = lab_factory(broker_url, RABBITLENS_RPC_BURST_MAX_S="1.5").wait_broker_connected()
    started = time.monotonic()
    answer = lab.post("/api/rpc/burst", {"n": 5, "calls": 1000, "queue": queue, "timeout_s": 120})
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert 1.4 < elapsed < 5, elapsed
    assert "time limit" in answer.json()["cancelled"] and "RABBITLENS_RPC_BURST_MAX_S" in answer.json()["cancelled"]
    assert lab.get("/api/rpc/bursts").json()["bursts"] == []
