"""Broker faults with everything running: consumers, a tap, the firehose trace and fib servers come back.

One lab server on a private node with the management API. The node is restarted (its data persists) and then
has all its connections closed by the server; after each fault the test checks, without timing anything, that
every long-lived object of the lab works again and that nothing durable was lost.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
import requests
import socketio

from tests.conftest import LabServer, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]

HIGH_RATE = ("tap", "trace", "delivery", "rpc_reply")
LOW_RATE = ("broker_status", "consumer", "taps", "trace_status")
# Generous bounds: a loaded 2-core machine restarts a node slowly and the links back off up to 5 s.
BACK = 30.0


class Events:
    """A Socket.IO client that records the page-facing events, one by one or unpacked from batches."""

    def __init__(self, base_url: str) -> None:
        self.lock = threading.Lock()
        self.by_name: dict[str, list[dict]] = defaultdict(list)
        self.sio = socketio.Client(reconnection=True)
        for name in HIGH_RATE + LOW_RATE:
            self.sio.on(name, self._recorder(name))
        self.sio.on("batch", self._on_batch)
        self.sio.connect(base_url, transports=["websocket"], wait_timeout=10)

    def _recorder(self, name: str):
        def record(data: dict) -> None:
            with self.lock:
                self.by_name[name].append(data)

        return record

    def _on_batch(self, batch: dict) -> None:
        with self.lock:
            for item in batch["events"]:
                self.by_name[item["event"]].append(item["data"])

    def get(self, name: str, **match: object) -> list[dict]:
        with self.lock:
            events = list(self.by_name[name])
        return [e for e in events if all(e.get(k) == v for k, v in match.items())]

    def states(self) -> list[str]:
        return [s["state"] for s in self.get("broker_status")]

    def mark(self) -> dict[str, int]:
        """How many events of each name so far (to look only at what comes after a fault)."""
        with self.lock:
            return {name: len(events) for name, events in self.by_name.items()}

    def since(self, mark: dict[str, int], name: str, **match: object) -> list[dict]:
        with self.lock:
            events = list(self.by_name[name][mark.get(name, 0) :])
        return [e for e in events if all(e.get(k) == v for k, v in match.items())]

    def close(self) -> None:
        self.sio.disconnect()


def went_down_and_came_back(states: list[str]) -> bool:
    """The page saw down -> reconnecting (any number of times) -> connected, nothing else in between."""
    squeezed = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    if "down" not in squeezed:
        return False
    tail = squeezed[squeezed.index("down") :]
    if "connected" not in tail:
        return False
    between = tail[: tail.index("connected")]
    return "reconnecting" in between and set(between) <= {"down", "reconnecting"}


def created(response: requests.Response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


class Scene:
    """The lab's long-lived objects on one node: what the faults must not break."""

    def __init__(self, lab: LabServer, unique) -> None:
        self.lab = lab
        self.exchange = unique("fault-x")
        self.work_queue = unique("fault-work")
        self.kept_queue = unique("fault-kept")
        self.rpc_queue = unique("fault-rpc")
        self.slow_queue = unique("fault-slow")
        created(lab.post("/api/exchanges", {"name": self.exchange, "type": "topic", "durable": True}))
        for queue, key in ((self.work_queue, "work"), (self.kept_queue, "kept")):
            created(lab.post("/api/queues", {"name": queue, "durable": True}))
            binding = {"source": self.exchange, "destination": queue, "routing_key": key}
            created(lab.post("/api/bindings", binding))
        self.consumers = [
            created(lab.post("/api/consumers", {"queue": self.work_queue, "ack": "manual", "prefetch": 10}))["id"]
            for _ in range(2)
        ]
        self.tap = created(lab.post("/api/taps", {"exchange": self.exchange, "binding_key": "#"}))
        assert created(lab.post("/api/trace", {"enabled": True}))["enabled"] is True
        self.servers = created(lab.post("/api/rpc/servers", {"count": 1, "queue": self.rpc_queue}))["servers"]
        self.servers += created(
            lab.post("/api/rpc/servers", {"count": 1, "queue": self.slow_queue, "work_ms": 20_000})
        )["servers"]
        assert all(s["state"] == "serving" for s in self.servers), self.servers

    def publish(self, key: str, body: str, persistent: bool = False) -> str:
        properties = {"delivery_mode": 2} if persistent else {}
        message = {"exchange": self.exchange, "routing_key": key, "body": body, "properties": properties}
        result = created(self.lab.post("/api/publish", message))
        assert result["confirmed"] and result["routed"], result
        return result["id"]

    def consumer_states(self) -> list[str]:
        return [self.lab.get(f"/api/consumers/{cid}").json()["state"] for cid in self.consumers]

    def fib_answers(self) -> bool:
        try:
            response = self.lab.post("/api/rpc/call", {"n": 10, "queue": self.rpc_queue, "timeout_s": 3})
        except requests.RequestException as exc:
            self.last_rpc = repr(exc)
            return False
        self.last_rpc = response.text
        return response.status_code == 200 and str(response.json()["result"]) == "55"

    def check_everything_streams(self, events: Events, label: str) -> None:
        """Consumers, the tap, the trace and the fib server all work now (waiting for each to come back)."""
        wait_until(lambda: self.consumer_states() == ["consuming"] * 2, timeout=BACK, message=f"{label}: consumers")
        wait_until(lambda: self.lab.get("/api/taps").json()[0]["state"] == "active", timeout=BACK, message="tap")
        wait_until(self.fib_answers, timeout=BACK, interval=0.5, message=f"{label}: the fib server answers")
        mark = events.mark()
        ids = {self.publish("work", f"{label} {i}") for i in range(6)}
        wait_until(
            lambda: {e["id"] for e in events.since(mark, "delivery", queue=self.work_queue)} >= ids,
            timeout=BACK,
            message=f"{label}: the consumers get new messages",
        )
        # Both are really attached: the broker hands the six messages round-robin to the two of them.
        takers = {e["consumer_id"] for e in events.since(mark, "delivery", queue=self.work_queue)}
        assert takers == set(self.consumers), takers
        wait_until(
            lambda: {e["id"] for e in events.since(mark, "tap", tap_id=self.tap["id"])} >= ids,
            timeout=BACK,
            message=f"{label}: the tap streams",
        )
        wait_until(
            lambda: len(events.since(mark, "trace", kind="publish", exchange=self.exchange)) >= len(ids),
            timeout=BACK,
            message=f"{label}: the trace streams",
        )


def test_broker_restart_and_closed_connections_with_everything_running(own_managed_node, lab_factory, unique):
    lab = lab_factory(own_managed_node.amqp_url, own_managed_node.management_url).wait_broker_connected()
    events = Events(lab.base_url)
    try:
        wait_until(lambda: events.states()[-1:] == ["connected"], message="connected")
        scene = Scene(lab, unique)
        scene.check_everything_streams(events, "before")

        # Durable queue, persistent messages, nobody consuming: they must all survive the restart.
        kept = {scene.publish("kept", f"kept {i}", persistent=True) for i in range(25)}
        # A call in flight on a server that takes 20 s: it must end (timeout or broker down), not hang.
        slow: dict[str, requests.Response | BaseException] = {}

        def slow_call() -> None:
            try:
                slow["response"] = lab.post("/api/rpc/call", {"n": 5, "queue": scene.slow_queue, "timeout_s": 8})
            except BaseException as exc:  # reported by the main thread
                slow["response"] = exc

        caller = threading.Thread(target=slow_call, daemon=True)
        caller.start()
        wait_until(
            lambda: any(s["in_flight"] for s in lab.get("/api/rpc/servers").json()["servers"]),
            timeout=BACK,
            message="the slow call reached its server",
        )

        before = len(events.states())
        own_managed_node.restart()
        caller.join(60)
        assert not caller.is_alive(), "the in-flight RPC call hung"
        response = slow["response"]
        assert isinstance(response, requests.Response), response
        assert response.status_code in (503, 504), response.text
        assert response.json()["error"]["code"] in ("timeout", "BROKER_DOWN")

        wait_until(lambda: events.states()[-1] == "connected", timeout=BACK, message="connected after restart")
        assert went_down_and_came_back(events.states()[before:]), events.states()[before:]

        scene.check_everything_streams(events, "after restart")
        for cid in scene.consumers:
            assert events.get("consumer", id=cid, change="reattached"), f"consumer {cid} says it re-attached"
        trace = lab.get("/api/trace").json()
        assert trace["enabled"] is True and trace["broker_tracing"] is True, trace

        mark = events.mark()
        reader = created(lab.post("/api/consumers", {"queue": scene.kept_queue, "ack": "manual", "prefetch": 50}))
        wait_until(
            lambda: {e["id"] for e in events.since(mark, "delivery", consumer_id=reader["id"])} >= kept,
            timeout=BACK,
            message="every persistent message published before the restart",
        )
        delivered = [e["id"] for e in events.since(mark, "delivery", consumer_id=reader["id"])]
        assert sorted(delivered) == sorted(kept), "none lost, none extra"

        # The server closes every connection: the same set comes back again.
        before = len(events.states())
        result = own_managed_node.ctl("close_all_connections", "fault test")
        assert result.returncode == 0, result.stderr
        wait_until(lambda: went_down_and_came_back(events.states()[before:]), timeout=BACK, message="down, then back")
        scene.check_everything_streams(events, "after close_all_connections")
        wait_until(
            lambda: [s["state"] for s in lab.get("/api/rpc/servers").json()["servers"]] == ["serving", "serving"],
            timeout=BACK,
            message="both fib servers serving",
        )
        # The lab switched tracing back on after the restart, so switching it off is still the lab's to do.
        off = created(lab.post("/api/trace", {"enabled": False}))
        assert off["enabled"] is False and off["broker_tracing"] is False, off
    finally:
        events.close()
