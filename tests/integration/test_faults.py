"""Broker faults: the app survives connections closed by the server and keeps no leftovers (private nodes only)."""

import pytest
import socketio

from tests.conftest import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]


def test_connections_closed_by_the_server_are_reopened(private_node, lab_factory):
    lab = lab_factory(private_node.amqp_url)
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
        after = lab.get("/api/stats").json()["process"]
        assert after["open_fds"] <= before["open_fds"] + 2
        assert after["greenlets"] <= before["greenlets"] + 2
    finally:
        client.disconnect()
