"""Spies (issue 18): watching a queue without taking its messages, on the real broker."""

from __future__ import annotations

from collections import Counter

import pika
import pytest

from tests.conftest import wait_until
from tests.integration.helpers import publish_when_up
from tests.integration.test_limits import post_all
from tests.integration.test_live import LiveClient

pytestmark = pytest.mark.broker


def spy_binding_keys(lab, spy_id: str) -> list[str]:
    """The routing keys of the bindings the lab lists for spy ``spy_id``."""
    return [b["routing_key"] for s in lab.get("/api/spies").json() if s["id"] == spy_id for b in s["bindings"]]


def spy_events(client: LiveClient, spy_id: str) -> list[dict]:
    with client.lock:
        return [e for e in client.events["spy"] if e["spy_id"] == spy_id]


def queue_gone(amqp, name: str) -> bool:
    """A passive declare of ``name`` says 404 (405 while another connection holds it exclusively)."""
    try:
        amqp.fresh_channel().queue_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_code == 404
    return False


def lab_topology(shared_lab, amqp, unique):
    """A topic exchange and a queue bound to it with `orders.*`, both made through the lab (so that it knows
    the binding without the management API)."""
    exchange, queue = unique("spy-topic"), unique("spy-queue")
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "topic"}).status_code == 201
    amqp.exchanges.append(exchange)
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    amqp.queues.append(queue)
    bound = shared_lab.post("/api/bindings", {"source": exchange, "destination": queue, "routing_key": "orders.*"})
    assert bound.status_code == 201, bound.text
    return exchange, queue


def test_a_spy_sees_what_the_queue_gets_and_its_consumer_still_gets_all(shared_lab, amqp, unique):
    exchange, queue = lab_topology(shared_lab, amqp, unique)
    client = LiveClient(shared_lab.base_url, names=("spy",))
    response = shared_lab.post("/api/spies", {"queue": queue})
    assert response.status_code == 201, response.text
    spy = response.json()
    try:
        assert spy["queue"] == queue
        assert spy["shadow_queue"].startswith("amq.gen-")
        assert spy["bindings"] == [{"source": exchange, "routing_key": "orders.*", "arguments": {}}]
        assert spy["mirrors_default_exchange"] is False
        assert "default exchange" in spy["note"] and "trace" in spy["note"]
        assert "management API" in spy["note"]  # this broker has none: the lab knows only its own bindings
        assert spy["id"] in [s["id"] for s in shared_lab.get("/api/spies").json()]

        for i in range(50):
            amqp.channel.basic_publish(exchange, f"orders.n{i}", f"m{i}".encode())
        amqp.channel.basic_publish(exchange, "users.created", b"not routed to the queue")
        events = wait_until(lambda: len(spy_events(client, spy["id"])) >= 50 or None, message="50 spy events")
        got = spy_events(client, spy["id"])
        assert [e["body"]["text"] for e in got] == [f"m{i}" for i in range(50)]
        assert got[0]["routing_key"] == "orders.n0" and got[0]["exchange"] == exchange
        assert events
        # The queue's own consumer gets every message as before.
        bodies = []
        for _ in range(50):
            method, _, body = amqp.channel.basic_get(queue, auto_ack=True)
            assert method is not None
            bodies.append(body.decode())
        assert bodies == [f"m{i}" for i in range(50)]
        assert amqp.channel.basic_get(queue, auto_ack=True)[0] is None
        listed = next(s for s in shared_lab.get("/api/spies").json() if s["id"] == spy["id"])
        assert listed["count"] == 50  # exact: the unrouted message is not counted

        # Straight to the queue through the default exchange: not mirrored (the note said so).
        amqp.channel.basic_publish("", queue, b"direct to the queue")
        method, _, body = amqp.channel.basic_get(queue, auto_ack=True)
        assert body == b"direct to the queue"
        # A binding added later is mirrored.
        added = shared_lab.post("/api/bindings", {"source": exchange, "destination": queue, "routing_key": "users.#"})
        assert added.status_code == 201
        wait_until(
            lambda: "users.#" in spy_binding_keys(shared_lab, spy["id"]),
            message="the new binding mirrored",
        )
        amqp.channel.basic_publish(exchange, "users.created", b"after the new binding")
        wait_until(lambda: len(spy_events(client, spy["id"])) >= 51 or None, message="the 51st spy event")
        assert spy_events(client, spy["id"])[-1]["body"]["text"] == "after the new binding"
        assert len(spy_events(client, spy["id"])) == 51  # the default-exchange publish never showed
        # Predictions count the shadow queue, marked as the lab's spy.
        route = shared_lab.post("/api/route", {"exchange": exchange, "routing_key": "orders.x"}).json()
        assert spy["shadow_queue"] in route["lab_queues"] and queue in route["queues"]
        assert any("spy" in note for note in route["notes"])
    finally:
        client.close()
        assert shared_lab.delete(f"/api/spies/{spy['id']}").status_code == 204
    assert spy["id"] not in [s["id"] for s in shared_lab.get("/api/spies").json()]
    wait_until(lambda: queue_gone(amqp, spy["shadow_queue"]), message="the shadow queue to go")
    assert shared_lab.delete(f"/api/spies/{spy['id']}").status_code == 404


def test_a_removed_binding_stops_being_mirrored(shared_lab, amqp, unique):
    exchange, queue = lab_topology(shared_lab, amqp, unique)
    spy = shared_lab.post("/api/spies", {"queue": queue}).json()
    try:
        body = {"source": exchange, "destination": queue, "routing_key": "orders.*"}
        assert shared_lab.delete("/api/bindings", json=body).status_code == 204
        wait_until(
            lambda: next(s for s in shared_lab.get("/api/spies").json() if s["id"] == spy["id"])["bindings"] == [],
            message="the binding unmirrored",
        )
        amqp.channel.basic_publish(exchange, "orders.x", b"x")
        route = shared_lab.post("/api/route", {"exchange": exchange, "routing_key": "orders.x"}).json()
        assert route["queues"] == [] and route["lab_queues"] == []
    finally:
        shared_lab.delete(f"/api/spies/{spy['id']}")


def test_bad_and_missing_queues(shared_lab, unique):
    missing = shared_lab.post("/api/spies", {"queue": unique("no-such-queue")})
    assert missing.status_code == 404, missing.text
    assert shared_lab.post("/api/spies", {"queue": "bad\nname"}).status_code == 400
    assert shared_lab.post("/api/spies", {"queue": ""}).status_code == 400
    assert shared_lab.post("/api/spies", {}).status_code == 400


def test_the_spies_go_when_the_app_stops(lab_factory, broker_url, amqp, unique):
    lab = lab_factory(broker_url).wait_broker_connected()
    queue = unique("spy-stop")
    assert lab.post("/api/queues", {"name": queue}).status_code == 201
    amqp.queues.append(queue)
    spy = lab.post("/api/spies", {"queue": queue}).json()
    assert not queue_gone(amqp, spy["shadow_queue"])
    lab.stop()
    wait_until(lambda: queue_gone(amqp, spy["shadow_queue"]), message="the shadow queue to go with the app")


def test_concurrent_spies_never_exceed_the_limit(lab_factory, broker_url, amqp, unique):
    lab = lab_factory(broker_url, RABBITLENS_MAX_SPIES="3").wait_broker_connected()
    queue = unique("spy-limit")
    assert lab.post("/api/queues", {"name": queue}).status_code == 201
    amqp.queues.append(queue)
    answers = post_all(lab.base_url + "/api/spies", [{"queue": queue}] * 30)
    statuses = Counter(r.status_code for r in answers)
    assert statuses[201] == 3 and statuses[409] == 27, statuses
    refused = next(r for r in answers if r.status_code == 409).json()["error"]
    assert "at most 3 spies" in refused["message"] and "RABBITLENS_MAX_SPIES" in refused["message"]
    spies = lab.get("/api/spies").json()
    assert len(spies) == 3
    assert lab.delete(f"/api/spies/{spies[0]['id']}").status_code == 204
    assert lab.post("/api/spies", {"queue": queue}).status_code == 201


def test_with_management_a_spy_mirrors_bindings_other_applications_make(managed_lab, managed_node, unique):
    exchange, queue = unique("spy-mx"), unique("spy-mq")
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    channel = connection.channel()
    spy = None
    try:
        channel.exchange_declare(exchange, "direct")
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange, "red")
        channel.queue_bind(queue, "amq.headers", "", arguments={"x-match": "all", "format": "pdf"})
        response = managed_lab.post("/api/spies", {"queue": queue})
        assert response.status_code == 201, response.text
        spy = response.json()
        assert sorted((b["source"], b["routing_key"]) for b in spy["bindings"]) == [
            ("amq.headers", ""),
            (exchange, "red"),
        ]
        assert "management API" not in spy["note"] and "default exchange" in spy["note"]
        client = LiveClient(managed_lab.base_url, names=("spy",))
        try:
            channel.queue_bind(queue, exchange, "blue")  # another application binds: the feed's poll sees it
            wait_until(
                lambda: "blue" in spy_binding_keys(managed_lab, spy["id"]),
                timeout=20,
                message="the other application's binding mirrored",
            )
            channel.basic_publish(exchange, "blue", b"blue")
            channel.basic_publish("amq.headers", "", b"pdf", pika.BasicProperties(headers={"format": "pdf"}))
            channel.basic_publish("amq.headers", "", b"png", pika.BasicProperties(headers={"format": "png"}))
            wait_until(lambda: len(spy_events(client, spy["id"])) >= 2 or None, message="two spy events")
            assert sorted(e["body"]["text"] for e in spy_events(client, spy["id"])) == ["blue", "pdf"]
            assert channel.queue_declare(queue, passive=True).method.message_count == 2
        finally:
            client.close()
        channel.queue_delete(queue)
        wait_until(
            lambda: not next(s for s in managed_lab.get("/api/spies").json() if s["id"] == spy["id"])["queue_exists"],
            timeout=20,
            message="the spy to see its queue gone",
        )
    finally:
        if spy is not None:
            managed_lab.delete(f"/api/spies/{spy['id']}")
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        connection.close()


@pytest.mark.private_node
def test_a_spy_rebinds_after_the_broker_restarts(private_node, lab_factory):
    lab = lab_factory(private_node.amqp_url).wait_broker_connected()
    exchange, queue = "rl-test-spy-durable-x", "rl-test-spy-durable-q"
    assert lab.post("/api/exchanges", {"name": exchange, "type": "direct", "durable": True}).status_code == 201
    assert lab.post("/api/queues", {"name": queue, "durable": True}).status_code == 201
    assert lab.post("/api/bindings", {"source": exchange, "destination": queue, "routing_key": "k"}).status_code == 201
    client = LiveClient(lab.base_url, names=("spy",))
    spy = lab.post("/api/spies", {"queue": queue}).json()
    first_shadow = spy["shadow_queue"]
    private_node.restart()

    def republished() -> bool:
        return publish_when_up(private_node.amqp_url, exchange, "k", b"after restart") and any(
            e["body"]["text"] == "after restart" for e in spy_events(client, spy["id"])
        )

    try:
        wait_until(republished, timeout=60, interval=1.0, message="a spy event after the restart")
        now = next(s for s in lab.get("/api/spies").json() if s["id"] == spy["id"])
        assert now["state"] == "active" and now["shadow_queue"] != first_shadow
        assert now["bindings"] == [{"source": exchange, "routing_key": "k", "arguments": {}}]
    finally:
        client.close()
