"""The RPC inspector pairs other applications' requests and replies from the firehose trace.

The applications are plain pika scripts written here (a tutorial-style server and clients) that know nothing
of the lab; trace needs the management API, so this runs on the private node that has it.
"""

from __future__ import annotations

import threading
import time
import uuid

import pika
import pytest
import socketio

from tests.conftest import wait_until
from tests.integration.helpers import ServerThreads, serve_until_stopped

pytestmark = [pytest.mark.broker, pytest.mark.private_node]


@pytest.fixture
def traced(managed_lab):
    before = managed_lab.get("/api/trace").json().get("enabled")
    response = managed_lab.post("/api/trace", {"enabled": True})
    assert response.status_code == 200, response.text
    wait_until(lambda: managed_lab.get("/api/rpc/inspect").json()["inspecting"], message="inspector listening")
    yield managed_lab
    if not before:
        managed_lab.post("/api/trace", {"enabled": False})


@pytest.fixture
def roundtrips(managed_lab):
    received: list[dict] = []
    client = socketio.Client(reconnection=False)
    client.on("rpc_roundtrip", received.append)
    client.on(
        "batch",
        lambda batch: received.extend(i["data"] for i in batch.get("events", []) if i["event"] == "rpc_roundtrip"),
    )
    client.connect(managed_lab.base_url, transports=["websocket"])
    yield received
    client.disconnect()


def tutorial_server(url: str, queue: str, ready: threading.Event, stop: threading.Event, reply_twice: bool) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=True)

    def on_request(ch, method, props, body):
        n = int(body)
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        for _ in range(2 if reply_twice else 1):  # twice: what a redelivered request looks like to the client
            ch.basic_publish(
                "", props.reply_to, str(a).encode(), pika.BasicProperties(correlation_id=props.correlation_id)
            )
        ch.basic_ack(method.delivery_tag)

    serve_until_stopped(connection, channel, queue, on_request, ready, stop)


def tutorial_calls(url: str, queue: str, ns: list[int], direct: bool = False) -> list[tuple[str, bytes]]:
    """The tutorial's client: one exclusive callback queue (or direct reply-to), one call at a time."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    reply_to = "amq.rabbitmq.reply-to" if direct else channel.queue_declare("", exclusive=True).method.queue
    answers: dict[str, bytes] = {}
    channel.basic_consume(reply_to, lambda ch, m, p, body: answers.setdefault(p.correlation_id, body), auto_ack=True)
    done = []
    for n in ns:
        cid = str(uuid.uuid4())
        channel.basic_publish("", queue, str(n).encode(), pika.BasicProperties(reply_to=reply_to, correlation_id=cid))
        deadline = time.monotonic() + 10
        while cid not in answers and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
        done.append((cid, answers[cid]))
    connection.process_data_events(time_limit=0.2)
    connection.close()
    return done


@pytest.fixture
def app_server(managed_node):
    servers = ServerThreads()

    def start(reply_twice: bool = False) -> str:
        queue = f"rl-test-inspect-{uuid.uuid4().hex[:8]}"
        servers.start(tutorial_server, managed_node.amqp_url, queue, reply_twice)
        return queue

    yield start
    servers.stop()


def trips_of(lab, cids: set[str]) -> list[dict]:
    return [t for t in lab.get("/api/rpc/inspect").json()["roundtrips"] if t["correlation_id"] in cids]


@pytest.mark.parametrize("direct", [False, True], ids=["callback_queue", "direct_reply_to"])
def test_other_applications_round_trips_are_paired(traced, managed_node, app_server, roundtrips, direct):
    queue = app_server()
    calls = tutorial_calls(managed_node.amqp_url, queue, [10, 20, 30], direct=direct)
    assert [body for _, body in calls] == [b"55", b"6765", b"832040"]
    cids = {cid for cid, _ in calls}
    wait_until(lambda: len(trips_of(traced, cids)) == 3, message="three round trips paired")
    for trip in trips_of(traced, cids):
        assert trip["status"] == "answered"
        assert trip["request_queue"] == queue
        assert {"10": "55", "20": "6765", "30": "832040"}[trip["request_body"]] == trip["reply_body"]
        assert trip["latency_ms"] is not None and trip["latency_ms"] >= 0
        assert trip["deliveries"] == 1 and trip["server"]  # the reply's publishing connection
        if direct:
            assert trip["client_queue"].startswith("amq.rabbitmq.reply-to")
        else:
            assert trip["client_queue"].startswith("amq.gen-")
        assert trip["client"] and trip["client"] != trip["server"]
    wait_until(lambda: cids <= {t["correlation_id"] for t in roundtrips}, message="rpc_roundtrip events")


def test_a_second_reply_shows_as_a_duplicate(traced, managed_node, app_server):
    queue = app_server(reply_twice=True)
    [(cid, body)] = tutorial_calls(managed_node.amqp_url, queue, [12])
    assert body == b"144"
    wait_until(lambda: len(trips_of(traced, {cid})) == 2, message="answer and duplicate")
    assert sorted(t["status"] for t in trips_of(traced, {cid})) == ["answered", "duplicate"]


def test_a_request_nobody_answers_is_listed_as_waiting(traced, managed_node):
    queue = f"rl-test-nobody-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    channel = connection.channel()
    try:
        channel.queue_declare(queue)
        cid = f"waiting-{uuid.uuid4().hex}"
        props = pika.BasicProperties(reply_to="amq.gen-nowhere", correlation_id=cid)
        channel.basic_publish("", queue, b"77", props)

        def waiting():
            return [w for w in traced.get("/api/rpc/inspect").json()["waiting"] if w["correlation_id"] == cid]

        wait_until(waiting, message="the request is waiting")
        [entry] = waiting()
        assert entry["request_queue"] == queue and entry["request_body"] == "77" and entry["routed"] is True
    finally:
        channel.queue_delete(queue)
        connection.close()


def test_inspect_says_why_when_trace_is_off(managed_lab):
    before = managed_lab.get("/api/trace").json().get("enabled")
    managed_lab.post("/api/trace", {"enabled": False})
    try:
        state = managed_lab.get("/api/rpc/inspect").json()
        assert state["inspecting"] is False and "trace" in state["reason"]
    finally:
        if before:
            managed_lab.post("/api/trace", {"enabled": True})
