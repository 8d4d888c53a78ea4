"""Taps: watching an exchange without taking messages from its queues."""

from __future__ import annotations

import pika
import pytest

from tests.conftest import wait_until
from tests.integration.helpers import publish_when_up
from tests.integration.test_live import LiveClient

pytestmark = pytest.mark.broker


def tap_events(client: LiveClient, tap_id: str) -> list[dict]:
    with client.lock:
        return [e for e in client.events["tap"] if e["tap_id"] == tap_id]


def test_a_tap_sees_a_message_and_the_application_queue_still_gets_it(shared_lab, amqp, unique):
    exchange, queue = unique("tap-topic"), unique("tap-app-queue")
    amqp.channel.exchange_declare(exchange, "topic")
    amqp.exchanges.append(exchange)
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    amqp.channel.queue_bind(queue, exchange, "orders.*")
    client = LiveClient(shared_lab.base_url)
    response = shared_lab.post("/api/taps", {"exchange": exchange, "binding_key": "orders.#"})
    assert response.status_code == 201
    tap = response.json()
    try:
        assert tap["queue"].startswith("amq.gen-"), "a server-named queue"
        assert tap["state"] == "active"
        listed = shared_lab.get("/api/taps").json()
        assert tap["id"] in [t["id"] for t in listed]

        props = pika.BasicProperties(
            content_type="text/plain", correlation_id="c-1", headers={"x-rabbitlens-id": "lab-42", "k": 7}
        )
        amqp.channel.basic_publish(exchange, "orders.created", b"<img src=x onerror=alert(1)>", props)
        amqp.channel.basic_publish(exchange, "users.created", b"not for this tap")
        events = wait_until(lambda: tap_events(client, tap["id"]), message="the tap event")
        event = events[0]
        assert event["exchange"] == exchange
        assert event["routing_key"] == "orders.created"
        assert event["body"]["text"] == "<img src=x onerror=alert(1)>"
        assert event["body"]["size"] == len(b"<img src=x onerror=alert(1)>")
        assert event["properties"]["correlation_id"] == "c-1"
        assert event["properties"]["headers"] == {"x-rabbitlens-id": "lab-42", "k": 7}
        assert event["id"] == "lab-42"

        # Not stolen: the application's queue has its copy.
        method, _, body = amqp.channel.basic_get(queue, auto_ack=True)
        assert method is not None and body == b"<img src=x onerror=alert(1)>"
        # The binding key filtered the other message out of the tap.
        assert len(tap_events(client, tap["id"])) == 1
        # The tap's queue is exclusive to the lab's connection.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            amqp.fresh_channel().queue_declare(tap["queue"], passive=True)
        assert info.value.reply_code == 405  # RESOURCE_LOCKED: exclusive to another connection
    finally:
        client.close()
        shared_lab.delete(f"/api/taps/{tap['id']}")


def test_deleting_a_tap_removes_its_queue(shared_lab, amqp, unique):
    exchange = unique("tap-fanout")
    amqp.channel.exchange_declare(exchange, "fanout")
    amqp.exchanges.append(exchange)
    tap = shared_lab.post("/api/taps", {"exchange": exchange}).json()
    assert shared_lab.delete(f"/api/taps/{tap['id']}").status_code == 204
    assert tap["id"] not in [t["id"] for t in shared_lab.get("/api/taps").json()]

    def queue_gone() -> bool:
        try:
            amqp.fresh_channel().queue_declare(tap["queue"], passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            return exc.reply_code == 404
        return False

    wait_until(queue_gone, message="the tap queue to go")
    assert shared_lab.delete(f"/api/taps/{tap['id']}").status_code == 404


def test_a_tap_on_a_headers_exchange_uses_binding_arguments(shared_lab, amqp, unique):
    exchange = unique("tap-headers")
    amqp.channel.exchange_declare(exchange, "headers")
    amqp.exchanges.append(exchange)
    client = LiveClient(shared_lab.base_url)
    tap = shared_lab.post("/api/taps", {"exchange": exchange, "arguments": {"x-match": "all", "format": "pdf"}}).json()
    try:
        assert tap["arguments"] == {"x-match": "all", "format": "pdf"}
        amqp.channel.basic_publish(exchange, "", b"zip", pika.BasicProperties(headers={"format": "zip"}))
        amqp.channel.basic_publish(exchange, "", b"pdf", pika.BasicProperties(headers={"format": "pdf"}))
        wait_until(lambda: tap_events(client, tap["id"]), message="the pdf message")
        assert [e["body"]["text"] for e in tap_events(client, tap["id"])] == ["pdf"]
    finally:
        client.close()
        shared_lab.delete(f"/api/taps/{tap['id']}")


def test_a_tap_on_a_missing_exchange_is_404_and_bad_input_is_400(shared_lab, unique):
    response = shared_lab.post("/api/taps", {"exchange": unique("no-such-exchange")})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert shared_lab.post("/api/taps", {"binding_key": "x"}).status_code == 400
    assert shared_lab.post("/api/taps", {"exchange": "x", "bogus": 1}).status_code == 400
    assert shared_lab.get("/api/health").ok


def test_binary_bodies_show_as_hex(shared_lab, amqp, unique):
    exchange = unique("tap-bin")
    amqp.channel.exchange_declare(exchange, "fanout")
    amqp.exchanges.append(exchange)
    client = LiveClient(shared_lab.base_url)
    tap = shared_lab.post("/api/taps", {"exchange": exchange}).json()
    try:
        amqp.channel.basic_publish(exchange, "", b"\xff\x00\x10")
        event = wait_until(lambda: tap_events(client, tap["id"]), message="the binary message")[0]
        assert event["body"]["kind"] == "binary" and event["body"]["text"] is None
        assert "ff 00 10" in event["body"]["hex"]
    finally:
        client.close()
        shared_lab.delete(f"/api/taps/{tap['id']}")


@pytest.mark.private_node
def test_a_tap_rebinds_after_the_broker_restarts(private_node, lab_factory):
    lab = lab_factory(private_node.amqp_url)
    connection = pika.BlockingConnection(pika.URLParameters(private_node.amqp_url))
    connection.channel().exchange_declare("rl-test-durable-x", "fanout", durable=True)
    connection.close()
    client = LiveClient(lab.base_url)
    tap = lab.post("/api/taps", {"exchange": "rl-test-durable-x"}).json()
    first_queue = tap["queue"]
    private_node.restart()

    def republished() -> bool:
        return publish_when_up(private_node.amqp_url, "rl-test-durable-x", "", b"after restart") and any(
            e["body"]["text"] == "after restart" for e in tap_events(client, tap["id"])
        )

    try:
        wait_until(republished, timeout=60, interval=1.0, message="a tap event after the restart")
        now = next(t for t in lab.get("/api/taps").json() if t["id"] == tap["id"])
        assert now["state"] == "active"
        assert now["queue"] != first_queue, "a new server-named queue, re-bound"
    finally:
        client.close()
