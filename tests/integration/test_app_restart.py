"""The lab process goes away (SIGTERM, then SIGKILL): it leaves nothing of its own behind on the broker.

Checked through the management API of a private node: no exclusive or server-named queue of the lab's survives
(taps, the trace queue, the RPC client's callback queue), no connection of the lab's stays open, no fib server
process outlives the lab, a graceful stop switches the vhost's tracing back off, and a new lab on the same node
starts with empty lists.
"""

from __future__ import annotations

import os

import pytest
import requests

from rabbit.localnode import PrivateNode
from tests.conftest import LabServer, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]

# The broker notices a dead peer's connections at once when the kernel closes its sockets; allow for a slow
# machine, and for the fib servers' own check that their parent is gone.
GONE = 20.0


def management(node: PrivateNode, path: str) -> object:
    url = f"http://127.0.0.1:{node.management_port}{path}"
    response = requests.get(url, auth=("guest", "guest"), timeout=10)
    response.raise_for_status()
    return response.json()


def vhost_tracing(node: PrivateNode) -> bool:
    return bool(management(node, "/api/vhosts/%2F")["tracing"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of the test run that exited but was not reaped yet is gone for our purpose (a zombie).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def created(response: requests.Response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def populate(lab: LabServer, node: PrivateNode, unique, round_: str) -> dict:
    """Consumers, taps, the trace and fib servers, plus one RPC call (the client's callback queue)."""
    queue = unique(f"app-work-{round_}")
    rpc_queue = unique(f"app-rpc-{round_}")
    created(lab.post("/api/queues", {"name": queue, "durable": True}))
    for _ in range(2):
        created(lab.post("/api/consumers", {"queue": queue, "ack": "manual", "prefetch": 5}))
    taps = [created(lab.post("/api/taps", {"exchange": "amq.topic", "binding_key": key})) for key in ("a.#", "b.*")]
    assert created(lab.post("/api/trace", {"enabled": True}))["enabled"] is True
    servers = created(lab.post("/api/rpc/servers", {"count": 2, "queue": rpc_queue}))["servers"]
    assert all(s["state"] == "serving" for s in servers), servers
    reply = created(lab.post("/api/rpc/call", {"n": 12, "queue": rpc_queue, "timeout_s": 10}))
    assert str(reply["result"]) == "144"
    assert vhost_tracing(node) is True
    own_queues = {tap["queue"] for tap in taps} | {lab.get("/api/trace").json()["queue"]}
    wait_until(lambda: own_queues <= {q["name"] for q in management(node, "/api/queues")}, message="queues listed")
    listed = {q["name"]: q for q in management(node, "/api/queues")}
    exclusive = {name for name, q in listed.items() if q.get("exclusive")}
    assert len(exclusive) >= 4, exclusive  # two taps, the trace, the RPC client's callback queue
    return {"queue": queue, "pids": [s["pid"] for s in servers], "own_queues": own_queues | exclusive}


def leftovers(node: PrivateNode, own_queues: set[str]) -> list[str]:
    """What the dead lab still has on the broker: its queues and connections (the node has no other clients)."""
    left = []
    for q in management(node, "/api/queues"):
        if q["name"] in own_queues or q.get("exclusive") or q["name"].startswith("amq.gen-"):
            left.append(f"queue {q['name']}")
    left += [f"connection {c['name']}" for c in management(node, "/api/connections")]
    return left


def assert_starts_clean(lab: LabServer) -> None:
    assert lab.get("/api/consumers").json() == []
    assert lab.get("/api/taps").json() == []
    assert lab.get("/api/rpc/servers").json()["servers"] == []
    assert lab.get("/api/trace").json()["enabled"] is False


def test_a_stopped_or_killed_lab_leaves_nothing_behind(own_managed_node, lab_factory, unique):
    # A graceful stop (SIGTERM): the shutdown hooks run.
    lab = lab_factory(own_managed_node.amqp_url, own_managed_node.management_url)
    first = populate(lab, own_managed_node, unique, "term")
    lab.stop()
    assert lab.process.returncode == 0, "SIGTERM must end the lab through its shutdown hooks, not kill it"
    wait_until(lambda: not leftovers(own_managed_node, first["own_queues"]), timeout=GONE, message="no leftovers")
    wait_until(lambda: not any(alive(pid) for pid in first["pids"]), timeout=GONE, message="fib servers gone")
    assert vhost_tracing(own_managed_node) is False, "a graceful stop switches the trace off"
    # The user's durable queue is not the lab's to delete; its consumers are gone with the lab.
    kept = f"/api/queues/%2F/{first['queue']}"
    assert management(own_managed_node, kept)["durable"] is True
    wait_until(lambda: management(own_managed_node, kept).get("consumers") == 0, timeout=GONE, message="no consumers")

    # A crash (SIGKILL): no hook runs; the broker and the fib servers notice on their own.
    second_lab = lab_factory(own_managed_node.amqp_url, own_managed_node.management_url)
    assert_starts_clean(second_lab)
    second = populate(second_lab, own_managed_node, unique, "kill")
    second_lab.process.kill()
    second_lab.process.wait(10)
    wait_until(lambda: not leftovers(own_managed_node, second["own_queues"]), timeout=GONE, message="no leftovers")
    wait_until(lambda: not any(alive(pid) for pid in second["pids"]), timeout=GONE, message="fib servers gone")

    third_lab = lab_factory(own_managed_node.amqp_url, own_managed_node.management_url)
    assert_starts_clean(third_lab)
