"""The app follows a broker that goes away and comes back (a private node, never the shared broker)."""

import pytest
import socketio

from tests.conftest import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]


def test_status_flips_to_down_and_back_to_connected(private_node, lab_factory):
    lab = lab_factory(private_node.amqp_url)
    states = []
    client = socketio.Client(reconnection=True)
    client.on("broker_status", lambda status: states.append(status["state"]))
    client.connect(lab.base_url, transports=["websocket"])
    try:
        wait_until(lambda: "connected" in states, message="connected status")
        private_node.stop()
        wait_until(lambda: "down" in states, timeout=15, message="down status after the node stopped")
        health = lab.get("/api/health").json()
        assert health["broker"]["connected"] is False
        assert health["status"] == "degraded"

        private_node.start()
        # The link retries with backoff capped at 5 s, so it is back within about 5 s of the node; the bound
        # here is generous because a loaded CI machine is slow (speed is measured in bench/, not asserted).
        wait_until(
            lambda: lab.get("/api/health").json()["broker"]["connected"], timeout=30, message="health connected again"
        )
        wait_until(lambda: states[-1] == "connected", message="connected status event")
        assert lab.process.poll() is None
    finally:
        client.disconnect()


def test_the_password_never_appears_in_responses_pages_or_logs(private_node, lab_factory):
    secret = "Sup3r-Secret-pw-71"
    for args in (["add_user", "lens", secret], ["set_permissions", "lens", ".*", ".*", ".*"]):
        result = private_node.ctl(*args)
        assert result.returncode == 0, result.stderr
    url = f"amqp://lens:{secret}@127.0.0.1:{private_node.amqp_port}/%2F"
    lab = lab_factory(url)
    wait_until(lambda: lab.get("/api/health").json()["broker"]["connected"], message="connected as lens")
    received = []
    client = socketio.Client(reconnection=False)
    client.on("broker_status", received.append)
    client.connect(lab.base_url, transports=["websocket"])
    wait_until(lambda: received, message="broker_status")
    client.disconnect()

    private_node.stop()  # errors while the broker is away must not leak it either
    wait_until(lambda: not lab.get("/api/health").json()["broker"]["connected"], message="disconnected")
    bodies = [lab.get("/api/health").text, lab.get("/").text, lab.get("/api/nope").text, repr(received)]
    assert "lens@127.0.0.1" in bodies[0]
    for body in [*bodies, lab.log_text()]:
        assert secret not in body
