"""Broker faults: the app survives connections closed by the server and keeps no leftovers (private nodes only)."""

import pytest
import socketio

from tests.conftest import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]


def test_connections_closed_by_the_server_are_reopened(private_node, lab_factory):
    lab = lab_factory(private_node.amqp_url).wait_broker_connected()
    states = []
    client = socketio.Client(reconnection=True)
    client.on("broker_status", lambda status: states.append(status))
    client.connect(lab.base_url, transports=["websocket"])
    try:
        wait_until(lambda: states and states[-1]["connected"], message="connected")
        before = lab.get("/api/stats").json()["process"]
        for round_ in range(3):
            result = private_node.ctl("close_all_connections", f"fault test round {round_}")
            assert result.returncode == 0, result.stderr
            wait_until(lambda: any(not s["connected"] for s in states), timeout=15, message="the drop reported")
            wait_until(lambda: states[-1]["connected"], timeout=15, message="reconnected")
            states.clear()
            states.append({"connected": True})
        health = lab.get("/api/health").json()
        assert health["broker"]["connected"] is True

        def settled() -> bool:  # greenlets of a reconnect may still be finishing on a loaded machine
            after = lab.get("/api/stats").json()["process"]
            return after["open_fds"] <= before["open_fds"] + 2 and after["greenlets"] <= before["greenlets"] + 2

        wait_until(settled, timeout=15, message="descriptors and greenlets back to where they were")
    finally:
        client.disconnect()


def management_channels(node) -> list[dict]:
    import requests

    return requests.get(
        f"http://127.0.0.1:{node.management_port}/api/channels", auth=("guest", "guest"), timeout=10
    ).json()


def test_hundreds_of_channel_errors_leak_no_channel_thread_or_greenlet(own_managed_node, lab_factory, unique):
    managed_node = own_managed_node
    lab = lab_factory(managed_node.amqp_url, managed_node.management_url)
    exchange = unique("ex")
    assert lab.post("/api/exchanges", {"name": exchange, "type": "direct"}).status_code == 201
    # Warm up: one error of each kind, so that lazily created objects exist before the baseline.
    lab.post("/api/exchanges", {"name": exchange, "type": "fanout"})
    lab.post(f"/api/queues/{unique('missing')}/purge")
    wait_until(lambda: len(management_channels(managed_node)) > 0, message="channels listed")
    channels_before = len(management_channels(managed_node))
    before = lab.get("/api/stats").json()["process"]

    codes = []
    for i in range(150):
        codes.append(lab.post("/api/exchanges", {"name": exchange, "type": "fanout"}).status_code)
        codes.append(lab.post(f"/api/queues/{unique('missing')}-{i}/purge").status_code)
    assert codes.count(409) == 150
    assert codes.count(404) == 150

    assert lab.post("/api/queues", {"name": unique("after"), "auto_delete": True}).status_code == 201
    after = lab.get("/api/stats").json()["process"]
    assert after["threads"] <= before["threads"]
    assert after["greenlets"] <= before["greenlets"] + 2
    assert after["open_fds"] <= before["open_fds"] + 2
    # Management statistics lag a little: allow it to settle, then the count must not have grown.
    wait_until(
        lambda: len(management_channels(managed_node)) <= channels_before,
        timeout=15,
        message="no growth in open channels",
    )
    lab.delete(f"/api/exchanges/{exchange}")
