"""The RPC API of a real lab process (gevent-patched) on the real broker: servers, calls, bursts, live events."""

from __future__ import annotations

import threading
import uuid

import pika
import pytest
import socketio

from tests.conftest import wait_until

pytestmark = pytest.mark.broker

RPC_EVENTS = (
    "rpc_request",
    "rpc_reply",
    "rpc_timeout",
    "rpc_error",
    "rpc_orphan",
    "rpc_burst_progress",
    "rpc_servers",
    "rpc_refused",
)


class Events:
    """A Socket.IO client that records the rpc events, whether sent one by one or inside ``batch``."""

    def __init__(self, base_url: str) -> None:
        self.received: list[tuple[str, dict]] = []
        self.client = socketio.Client(reconnection=False)
        for name in RPC_EVENTS:
            self.client.on(name, lambda data, name=name: self.received.append((name, data)))
        self.client.on("batch", self.on_batch)
        self.client.connect(base_url, transports=["websocket"])

    def on_batch(self, batch: dict) -> None:
        for item in batch.get("events", []):
            if item["event"] in RPC_EVENTS:
                self.received.append((item["event"], item["data"]))

    def of(self, name: str, **match: object) -> list[dict]:
        return [d for n, d in list(self.received) if n == name and all(d.get(k) == v for k, v in match.items())]

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def events(shared_lab):
    recorder = Events(shared_lab.base_url)
    yield recorder
    recorder.close()


@pytest.fixture
def servers(shared_lab, amqp, unique):
    """Start lab fib servers on a queue of this test; all are killed after it."""
    queue = unique("rpcq")
    amqp.queues.append(queue)
    started: list[str] = []

    def start(**body: object) -> list[dict]:
        response = shared_lab.post("/api/rpc/servers", {"queue": queue, **body})
        assert response.status_code == 201, response.text
        found = response.json()["servers"]
        started.extend(s["id"] for s in found)
        assert all(s["state"] == "serving" for s in found), found
        return found

    start.queue = queue
    yield start
    for sid in started:
        shared_lab.delete(f"/api/rpc/servers/{sid}?kill=1")
    shared_lab.delete("/api/rpc/servers?stopped=1")  # killed servers stay listed until cleared


def server_stats(lab, sid: str) -> dict:
    return next((s for s in lab.get("/api/rpc/servers").json()["servers"] if s["id"] == sid), {})


def test_start_call_list_and_stop_a_server(shared_lab, servers, events):
    [started] = servers(count=1)
    assert started["pid"] > 0 and started["prefetch"] == 1 and started["handled"] == 0
    response = shared_lab.post("/api/rpc/call", {"n": 30, "queue": servers.queue})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["result"] == "832040" and reply["n"] == 30 and reply["reply_mode"] == "callback_queue"
    assert reply["server"] == started["id"] and reply["latency_ms"] > 0 and len(reply["correlation_id"]) == 32
    wait_until(lambda: server_stats(shared_lab, started["id"]).get("handled") == 1, message="handled 1")
    listed = server_stats(shared_lab, started["id"])
    assert listed["pid"] == started["pid"] and listed["errors"] == 0 and listed["in_flight"] == 0

    wait_until(lambda: events.of("rpc_reply", correlation_id=reply["correlation_id"]), message="rpc_reply event")
    [event] = events.of("rpc_reply", correlation_id=reply["correlation_id"])
    assert event["server"] == started["id"] and event["result"] == "832040" and event["latency_ms"] > 0
    assert events.of("rpc_request", correlation_id=reply["correlation_id"])[0]["queue"] == servers.queue

    stopped = shared_lab.delete(f"/api/rpc/servers/{started['id']}")
    assert stopped.status_code == 200
    assert stopped.json()["server"]["exit_code"] == 0 and stopped.json()["server"]["killed"] is False
    # It stays listed, stopped, with its final counts, until cleared (issue 18).
    listed = server_stats(shared_lab, started["id"])
    assert listed["state"] == "stopped" and listed["handled"] == 1 and listed["exit_code"] == 0
    again = shared_lab.delete(f"/api/rpc/servers/{started['id']}")
    assert again.status_code == 200 and again.json()["server"]["state"] == "stopped"
    cleared = shared_lab.delete("/api/rpc/servers?stopped=1").json()
    assert started["id"] in cleared["cleared"] and server_stats(shared_lab, started["id"]) == {}
    assert shared_lab.delete(f"/api/rpc/servers/{started['id']}").status_code == 404


def test_a_killed_server_stays_listed_with_its_final_counts_until_cleared(shared_lab, servers, events):
    [first, second] = servers(count=2)
    for n in range(6):
        assert shared_lab.post("/api/rpc/call", {"n": n, "queue": servers.queue}).status_code == 200
    wait_until(
        lambda: (
            server_stats(shared_lab, first["id"]).get("handled", 0)
            + server_stats(shared_lab, second["id"]).get("handled", 0)
            == 6
        ),
        message="6 handled",
    )
    handled = server_stats(shared_lab, first["id"])["handled"]
    killed = shared_lab.delete(f"/api/rpc/servers/{first['id']}?kill=1").json()["server"]
    assert killed["state"] == "killed" and killed["killed"] is True and killed["exit_code"] == -9
    listed = server_stats(shared_lab, first["id"])
    assert listed["state"] == "killed" and listed["handled"] == handled and listed["ended_at"] > 0
    assert server_stats(shared_lab, second["id"])["state"] == "serving"
    wait_until(  # the live list says so too
        lambda: any(
            s["id"] == first["id"] and s["state"] == "killed" for e in events.of("rpc_servers") for s in e["servers"]
        ),
        message="an rpc_servers event with the killed server",
    )
    assert shared_lab.delete("/api/rpc/servers").status_code == 400  # ?stopped=1 is required
    cleared = shared_lab.delete("/api/rpc/servers?stopped=1").json()
    assert first["id"] in cleared["cleared"] and second["id"] not in cleared["cleared"]
    assert [s["id"] for s in cleared["servers"] if s["id"] in (first["id"], second["id"])] == [second["id"]]


def test_calls_refused_before_sending_are_in_the_round_trip_list(shared_lab, amqp, unique, events):
    queue = unique("rpc-refused")
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    no_server = shared_lab.post("/api/rpc/call", {"n": 5, "queue": queue, "timeout_s": 1})
    assert no_server.status_code == 504
    bad_n = shared_lab.post("/api/rpc/call", {"n": -3, "queue": queue})
    assert bad_n.status_code == 400
    bad_queue = shared_lab.post("/api/rpc/call", {"n": 3, "queue": "bad\nqueue"})
    assert bad_queue.status_code == 400
    refused = wait_until(
        lambda: (lambda found: found if len(found) >= 2 else None)(events.of("rpc_refused", queue=queue)),
        message="two rpc_refused events",
    )
    assert [e["n"] for e in refused] == ["5", "-3"]
    assert "0 consumers" in refused[0]["reason"] and refused[0]["status"] == 504
    assert refused[1]["status"] == 400 and "n" in refused[1]["reason"]
    [bad] = wait_until(lambda: events.of("rpc_refused", queue="bad\nqueue") or None, message="bad queue event")
    assert bad["status"] == 400 and bad["n"] == "3"
    assert events.of("rpc_request", queue=queue) == []  # nothing was sent
    timeline = shared_lab.get("/api/rpc/status").json()["timeline"]
    assert any(t["event"] == "rpc_refused" and t["data"]["queue"] == queue for t in timeline)


def test_direct_reply_to_call(shared_lab, servers):
    servers(count=2)
    reply = shared_lab.post("/api/rpc/call", {"n": 90, "queue": servers.queue, "reply_mode": "direct_reply_to"}).json()
    assert reply["result"] == "2880067194370816120" and reply["reply_mode"] == "direct_reply_to"


@pytest.mark.parametrize(
    "body",
    [{"n": -1}, {"n": "abc"}, {"n": 3.5}, {"n": True}, {}, {"n": 1, "reply_mode": "carrier_pigeon"}, {"n": 1, "x": 2}],
)
def test_invalid_calls_are_refused_before_sending(shared_lab, body):
    response = shared_lab.post("/api/rpc/call", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"  # the name issue 6 gives this error


def test_no_server_is_a_fast_timeout_with_the_consumer_count(shared_lab, amqp, unique):
    queue = unique("nobody")
    amqp.fresh_channel().queue_declare(queue)
    amqp.queues.append(queue)
    response = shared_lab.post("/api/rpc/call", {"n": 5, "queue": queue, "timeout_s": 60})
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "timeout" and error["consumers"] == 0 and error["waited_ms"] == 0
    assert "no server is consuming" in error["message"]
    missing = shared_lab.post("/api/rpc/call", {"n": 5, "queue": unique("missing")}).json()["error"]
    assert missing["code"] == "timeout" and missing["queue_exists"] is False


def test_over_the_servers_bound_is_a_server_error(shared_lab, servers, events):
    [server] = servers(max_n=50)
    response = shared_lab.post("/api/rpc/call", {"n": 51, "queue": servers.queue})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "server_error" and error["message"] == "n must be <= 50 (got 51)"
    assert error["server"] == server["id"]
    wait_until(lambda: events.of("rpc_error", correlation_id=error["correlation_id"]), message="rpc_error event")


def test_a_slow_server_times_out_with_its_consumer_count(shared_lab, servers, events):
    servers(work_ms=1500)
    response = shared_lab.post("/api/rpc/call", {"n": 3, "queue": servers.queue, "timeout_s": 0.3})
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "timeout" and error["consumers"] == 1 and error["waited_ms"] >= 300
    wait_until(lambda: events.of("rpc_timeout", correlation_id=error["correlation_id"]), message="rpc_timeout")
    wait_until(lambda: events.of("rpc_orphan", correlation_id=error["correlation_id"]), message="late orphan")
    assert events.of("rpc_orphan", correlation_id=error["correlation_id"])[0]["reason"] == "late"


def test_burst_reports_progress_and_a_summary(shared_lab, servers, events):
    servers(count=2, prefetch=20)
    response = shared_lab.post(
        "/api/rpc/burst", {"ns": [1, 10, 30], "calls": 900, "concurrency": 64, "queue": servers.queue}
    )
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["calls"] == summary["ok"] == 900 and summary["errors"] == summary["timeouts"] == 0
    assert 0 < summary["p50_ms"] <= summary["p90_ms"] <= summary["p99_ms"]
    assert summary["calls_per_s"] > 0 and sum(summary["servers"].values()) == 900
    wait_until(lambda: events.of("rpc_burst_progress", burst_id=summary["burst_id"], done=900), message="progress")
    # sampled round trips of the burst reach the timeline too, not all 900
    assert 0 < len(events.of("rpc_reply")) < 900


@pytest.mark.parametrize("body", [{"ns": [1], "n": 1}, {"calls": 3}, {"n": 1, "concurrency": 257}, {"ns": []}])
def test_invalid_bursts_are_refused(shared_lab, body):
    assert shared_lab.post("/api/rpc/burst", body).status_code == 400


def test_burst_with_no_server_fails_fast(shared_lab, unique):
    response = shared_lab.post("/api/rpc/burst", {"n": 1, "calls": 1000, "queue": unique("void")})
    assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"


def test_killing_a_server_after_its_reply_shows_a_duplicate_orphan(shared_lab, servers, events):
    [first] = servers(ack_delay_ms=30000)
    reply = shared_lab.post("/api/rpc/call", {"n": 15, "queue": servers.queue}).json()
    assert reply["result"] == "610" and reply["server"] == first["id"]
    wait_until(lambda: server_stats(shared_lab, first["id"]).get("in_flight") == 1, message="reply sent, ack held")
    [second] = servers()
    killed = shared_lab.delete(f"/api/rpc/servers/{first['id']}?kill=1").json()["server"]
    assert killed["killed"] is True and killed["exit_code"] == -9
    wait_until(lambda: events.of("rpc_orphan", correlation_id=reply["correlation_id"]), message="duplicate reply")
    [orphan] = events.of("rpc_orphan", correlation_id=reply["correlation_id"])
    assert orphan["reason"] == "duplicate" and orphan["server"] == second["id"] and orphan["body"] == "610"
    wait_until(lambda: server_stats(shared_lab, second["id"]).get("redelivered") == 1, message="redelivered")


def test_the_lab_calls_a_plain_tutorial_server(shared_lab, broker_url, amqp, unique):
    queue = unique("tutorial")
    amqp.queues.append(queue)
    ready, stop = threading.Event(), threading.Event()

    def serve():
        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        channel = connection.channel()
        channel.queue_declare(queue)

        def on_request(ch, method, props, body):
            n = int(body)
            a, b = 0, 1
            for _ in range(n):
                a, b = b, a + b
            ch.basic_publish(
                "", props.reply_to, str(a).encode(), pika.BasicProperties(correlation_id=props.correlation_id)
            )
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(queue, on_request)
        ready.set()
        while not stop.is_set():
            connection.process_data_events(time_limit=0.1)
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        for mode in ("callback_queue", "direct_reply_to"):
            reply = shared_lab.post("/api/rpc/call", {"n": 40, "queue": queue, "reply_mode": mode}).json()
            assert reply["result"] == "102334155" and reply["server"] is None
        summary = shared_lab.post("/api/rpc/burst", {"ns": [5, 6], "calls": 40, "concurrency": 8, "queue": queue})
        assert summary.json()["ok"] == 40
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.private_node
def test_the_rpc_client_and_servers_survive_a_broker_restart(private_node, lab_factory):
    lab = lab_factory(private_node.amqp_url)
    wait_until(lambda: lab.get("/api/rpc/status").json()["client"]["state"] == "connected", message="rpc client up")
    queue = f"rl-test-restart-{uuid.uuid4().hex[:6]}"
    [slow] = lab.post("/api/rpc/servers", {"queue": queue, "work_ms": 4000}).json()["servers"]
    try:
        pending = []
        caller = threading.Thread(
            target=lambda: pending.append(lab.post("/api/rpc/call", {"n": 8, "queue": queue, "timeout_s": 60}))
        )
        caller.start()
        wait_until(lambda: server_stats(lab, slow["id"]).get("in_flight") == 1, message="call in flight")
        private_node.stop()
        caller.join(20)
        assert pending, "the call in flight hung"
        assert pending[0].status_code in (503, 504)
        assert pending[0].json()["error"]["code"] in ("BROKER_DOWN", "timeout")
        down = lab.post("/api/rpc/call", {"n": 8, "queue": queue})
        assert down.status_code == 503 and down.json()["error"]["code"] == "BROKER_DOWN"

        private_node.start()
        wait_until(
            lambda: lab.get("/api/rpc/status").json()["client"]["state"] == "connected",
            timeout=20,
            message="rpc client reconnected",
        )
        assert lab.get("/api/rpc/status").json()["client"]["reconnects"] >= 1
        wait_until(lambda: server_stats(lab, slow["id"]).get("state") == "serving", timeout=20, message="server back")
        reply = lab.post("/api/rpc/call", {"n": 8, "queue": queue, "timeout_s": 10}).json()
        assert reply["result"] == "21", reply
    finally:
        lab.delete(f"/api/rpc/servers/{slow['id']}?kill=1")


def test_a_new_browser_gets_the_client_state_servers_and_recent_calls(shared_lab, servers):
    [server] = servers()
    reply = shared_lab.post("/api/rpc/call", {"n": 12, "queue": servers.queue}).json()
    status = shared_lab.get("/api/rpc/status").json()
    assert status["client"]["state"] == "connected" and status["client"]["callback_queue"].startswith("amq.gen-")
    assert {"event": "rpc_reply", "cid": reply["correlation_id"]} in [
        {"event": item["event"], "cid": item["data"]["correlation_id"]} for item in status["timeline"]
    ]
    states = []
    client = socketio.Client(reconnection=False)
    client.on("rpc_state", states.append)
    client.connect(shared_lab.base_url, transports=["websocket"])
    try:
        wait_until(lambda: states, message="rpc_state on connect")
        state = states[0]
        assert state["client"]["state"] == "connected"
        assert server["id"] in [s["id"] for s in state["servers"]]
        assert reply["correlation_id"] in [item["data"]["correlation_id"] for item in state["timeline"]]
    finally:
        client.disconnect()
