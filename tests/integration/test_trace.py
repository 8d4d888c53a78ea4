"""The firehose trace: every publish and delivery in the vhost, other applications' traffic included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
import requests

from tests.conftest import wait_until
from tests.integration.test_live import LiveClient

pytestmark = pytest.mark.broker

# A plain pika script that knows nothing of the lab: declare, bind, publish, consume one, clean up.
PLAIN_SCRIPT = textwrap.dedent(
    """
    import sys, pika
    url, exchange, queue = sys.argv[1:4]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(exchange, "direct", auto_delete=True)
    channel.queue_declare(queue, auto_delete=True)
    channel.queue_bind(queue, exchange, "invoice")
    props = pika.BasicProperties(correlation_id="corr-7", reply_to="replies-here", headers={"h": "v"})
    channel.basic_publish(exchange, "invoice", b"hello from elsewhere", props)
    for method, properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=10):
        break
    channel.queue_delete(queue)
    connection.close()
    """
)


def vhost_tracing(node) -> bool:
    response = requests.get(node.management_url.rstrip("/") + "/api/vhosts/%2F", timeout=5)
    response.raise_for_status()
    return bool(response.json().get("tracing"))


def trace_events(client: LiveClient, **match: object) -> list[dict]:
    with client.lock:
        events = list(client.events["trace"])
    return [e for e in events if all(e.get(k) == v for k, v in match.items())]


def test_trace_shows_a_plain_pika_script_s_publish_and_delivery(managed_lab, managed_node, unique):
    client = LiveClient(managed_lab.base_url)
    response = managed_lab.post("/api/trace", {"enabled": True})
    assert response.status_code == 200, response.text
    status = response.json()
    try:
        assert status["enabled"] is True
        assert status["available"] is True
        assert status["broker_tracing"] is True
        assert status["turned_on_by_lab"] is True
        wait_until(lambda: client.low_rate.get("trace_status", {}).get("enabled"), message="trace_status event")

        exchange, queue = unique("trace-x"), unique("trace-q")
        subprocess.run(
            [sys.executable, "-c", PLAIN_SCRIPT, managed_node.amqp_url, exchange, queue], check=True, timeout=30
        )
        publish = wait_until(lambda: trace_events(client, kind="publish", exchange=exchange), message="publish")[0]
        assert publish["routing_key"] == "invoice"
        assert publish["routed_queues"] == [queue]
        assert publish["queue"] is None
        assert publish["correlation_id"] == "corr-7"
        assert publish["reply_to"] == "replies-here"
        assert publish["properties"]["headers"] == {"h": "v"}
        assert publish["body"]["text"] == "hello from elsewhere"
        assert publish["body"]["size"] == len("hello from elsewhere")
        assert publish["user"] == "guest"
        assert publish["node"]
        assert publish["connection"]
        assert isinstance(publish["channel"], int)
        assert isinstance(publish["time"], float)
        assert isinstance(publish["properties"], dict)

        deliver = wait_until(lambda: trace_events(client, kind="deliver", queue=queue), message="delivery")[0]
        assert deliver["exchange"] == exchange
        assert deliver["routing_key"] == "invoice"
        assert deliver["body"]["text"] == "hello from elsewhere"
    finally:
        client.close()
        off = managed_lab.post("/api/trace", {"enabled": False}).json()
    assert off["enabled"] is False
    assert vhost_tracing(managed_node) is False, "the lab switches off the tracing it switched on"


def test_the_lab_s_own_tap_deliveries_stay_out_of_the_trace(managed_lab, managed_node, unique):
    import pika

    client = LiveClient(managed_lab.base_url)
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    channel = connection.channel()
    exchange = unique("trace-tap-x")
    channel.exchange_declare(exchange, "fanout", auto_delete=False)
    tap = managed_lab.post("/api/taps", {"exchange": exchange}).json()
    managed_lab.post("/api/trace", {"enabled": True}).raise_for_status()
    try:
        channel.basic_publish(exchange, "", b"tapped")
        wait_until(lambda: trace_events(client, kind="publish", exchange=exchange), message="the publish")
        wait_until(lambda: client.count("tap") >= 1, message="the tap event")
        status = wait_until(
            lambda: (s := managed_lab.get("/api/trace").json())["skipped_own"] >= 1 and s, message="a skipped delivery"
        )
        assert status["skipped_own"] >= 1
        assert trace_events(client, kind="deliver", queue=tap["queue"]) == []
    finally:
        client.close()
        managed_lab.post("/api/trace", {"enabled": False})
        managed_lab.delete(f"/api/taps/{tap['id']}")
        channel.exchange_delete(exchange)
        connection.close()


def test_trace_without_the_management_api_says_why(shared_lab):
    status = shared_lab.get("/api/trace").json()
    assert status["available"] is False
    assert status["enabled"] is False
    assert "does not answer" in status["reason"]
    response = shared_lab.post("/api/trace", {"enabled": True})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "MANAGEMENT_UNAVAILABLE"
    assert error["message"].startswith("trace needs the management API at ")
    assert shared_lab.post("/api/trace", {"enabled": "yes please"}).status_code == 400


def test_in_process_trace_listeners_and_tracing_off_at_shutdown(managed_node, unique):
    """What the RPC inspector uses: ``lab.watch.add_trace_listener(fn)``, in the lab's process."""
    import pika

    from app import create_app
    from web.lab import EXTENSION_KEY

    app = create_app(
        {
            "amqp_url": managed_node.amqp_url,
            "management_url": managed_node.management_url,
            "async_mode": "threading",
        }
    )
    lab = app.extensions[EXTENSION_KEY]
    got: list[dict] = []
    seen = threading.Event()

    def listener(event: dict) -> None:
        got.append(event)
        seen.set()

    try:
        assert lab.broker.link.wait_connected(10)
        watch = lab.watch
        watch.add_trace_listener(listener)
        assert watch.set_trace(True)["enabled"] is True
        assert vhost_tracing(managed_node) is True
        queue = unique("listener-q")
        connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
        channel = connection.channel()
        channel.queue_declare(queue, auto_delete=True)
        channel.basic_publish("", queue, b"to the default exchange")
        wait_until(lambda: [e for e in got if e["kind"] == "publish" and e["routing_key"] == queue], message="event")
        event = next(e for e in got if e["routing_key"] == queue)
        assert event["exchange"] == ""
        assert event["routed_queues"] == [queue]
        channel.queue_delete(queue)
        connection.close()
    finally:
        lab.shutdown()
    assert vhost_tracing(managed_node) is False, "tracing goes off when the app stops"
