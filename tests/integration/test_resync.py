"""A (re)connecting browser is sent the newest high-rate events (`recent`) to re-sync its feeds."""

import pytest
import socketio

from tests.conftest import wait_until

pytestmark = pytest.mark.broker


def test_a_reconnecting_client_gets_the_events_it_missed(shared_lab, amqp, unique):
    queue = unique("resync")
    amqp.queues.append(queue)
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    consumer = shared_lab.post("/api/consumers", {"queue": queue, "ack": "auto"}).json()["id"]
    try:
        first = socketio.Client(reconnection=False)
        first.connect(shared_lab.base_url, transports=["websocket"])
        first.disconnect()  # the page's link drops; traffic goes on meanwhile
        ids = [shared_lab.post("/api/publish", {"routing_key": queue, "body": f"m{i}"}).json()["id"] for i in range(3)]
        wait_until(lambda: shared_lab.get(f"/api/consumers/{consumer}").json()["handled"] >= 3, message="3 handled")

        recent = []
        again = socketio.Client(reconnection=False)
        again.on("recent", recent.append)
        again.connect(shared_lab.base_url, transports=["websocket"])
        try:
            wait_until(lambda: recent, message="the recent events on connect")
            items = recent[0]["events"]
            delivered = [i["data"]["id"] for i in items if i["event"] == "delivery" and i["data"]["queue"] == queue]
            assert delivered == ids
            assert all(item["age_s"] >= 0 for item in items)
            assert len(items) <= 200
        finally:
            again.disconnect()
    finally:
        shared_lab.delete(f"/api/consumers/{consumer}")
