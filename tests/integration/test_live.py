"""The live path on a real lab server: broker -> tap -> batcher -> a real Socket.IO client, exact counts."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import engineio
import pika
import pytest
import socketio
import websocket

from tests.conftest import wait_until

pytestmark = pytest.mark.broker


class InOrderEngineIOClient(engineio.Client):
    """Handles each message in the reading thread, in order, like a browser (python-engineio's client starts a
    thread per message by default, which loses the order and, under a flood, piles up threads)."""

    def _trigger_event(self, event, *args, **kwargs):
        kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    def _engineio_client_class(self):
        return InOrderEngineIOClient


class LiveClient:
    """A python-socketio client that sees events one by one or in batches, like the page's socket module."""

    def __init__(self, base_url: str, names: tuple[str, ...] = ("tap", "trace")) -> None:
        self.events: dict[str, list[object]] = {name: [] for name in names}
        self.singles: Counter[str] = Counter()
        self.batches = 0
        self.dropped: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.low_rate: dict[str, object] = {}
        self.lock = threading.Lock()
        self.sio = InOrderClient(reconnection=False, websocket_extra_options={"skip_utf8_validation": True})
        for name in names:
            self.sio.on(name, self._single(name))
        self.sio.on("batch", self._on_batch)
        for name in ("taps", "trace_status"):
            self.sio.on(name, self._state(name))
        self.sio.connect(base_url, transports=["websocket"], wait_timeout=10)

    def _single(self, name: str):
        def handler(data: object) -> None:
            with self.lock:
                self.singles[name] += 1
                self.events[name].append(data)

        return handler

    def _state(self, name: str):
        def handler(data: object) -> None:
            self.low_rate[name] = data

        return handler

    def _on_batch(self, batch: dict) -> None:
        with self.lock:
            self.batches += 1
            self.dropped = dict(batch["dropped"])
            self.totals = dict(batch["totals"])
            for item in batch["events"]:
                if item["event"] in self.events:
                    self.events[item["event"]].append(item["data"])

    def count(self, name: str) -> int:
        with self.lock:
            return len(self.events[name])

    def seen(self, name: str) -> int:
        """Received plus dropped from this client's view: exact, whatever the rate."""
        with self.lock:
            return len(self.events[name]) + self.dropped.get(name, 0)

    def close(self) -> None:
        self.sio.disconnect()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def fanout(amqp, unique) -> str:
    name = unique("live-fanout")
    amqp.channel.exchange_declare(name, "fanout", auto_delete=False)
    amqp.exchanges.append(name)
    return name


def publish_many(broker_url: str, exchange: str, count: int, body: bytes = b"", pause: float = 0.0) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    try:
        for i in range(count):
            payload = body or json.dumps({"n": i}).encode()
            channel.basic_publish(exchange, "", payload)
            if pause:
                time.sleep(pause)
    finally:
        connection.close()


def test_light_traffic_reaches_the_client_event_by_event(shared_lab, broker_url, fanout):
    client = LiveClient(shared_lab.base_url)
    try:
        tap = shared_lab.post("/api/taps", {"exchange": fanout}).json()
        publish_many(broker_url, fanout, 10, pause=0.05)
        wait_until(lambda: client.count("tap") >= 10, message="10 tap events")
        mine = [e for e in client.events["tap"] if e["tap_id"] == tap["id"]]
        assert [json.loads(e["body"]["text"])["n"] for e in mine] == list(range(10))
        assert client.singles["tap"] >= 10, "light traffic is not batched"
        assert client.dropped.get("tap", 0) == 0
    finally:
        client.close()
        shared_lab.delete(f"/api/taps/{tap['id']}")


def test_a_burst_reaches_the_client_with_exact_counts_in_batches(lab_factory, broker_url, fanout):
    lab = lab_factory(broker_url)
    client = LiveClient(lab.base_url)
    try:
        lab.post("/api/taps", {"exchange": fanout}).raise_for_status()
        total = 20_000
        publish_many(broker_url, fanout, total)
        wait_until(lambda: client.seen("tap") >= total, timeout=60, message=f"{total} tap events seen")
        time.sleep(0.3)  # nothing more may arrive
        assert client.seen("tap") == total, "received + dropped from the view = published, exactly"
        assert client.batches > 0, "a burst is batched"
        numbers = [json.loads(e["body"]["text"])["n"] for e in client.events["tap"]]
        assert numbers == sorted(numbers), "order is kept"
        assert len(set(numbers)) == len(numbers), "no event twice"
        if not client.dropped.get("tap"):
            assert set(numbers) == set(range(total))
        assert client.totals["tap"] == total, "the server's exact total"
        assert client.events["tap"][-1]["seq"] == total, "the newest event is never the one dropped"
    finally:
        client.close()


def slow_websocket_client(base_url: str) -> websocket.WebSocket:
    """A Socket.IO client that connects and then never reads: the stalled browser tab."""
    ws = websocket.create_connection(
        base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        timeout=10,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
    )
    assert ws.recv().startswith("0")  # Engine.IO open
    ws.send("40")  # Socket.IO connect to "/"
    assert ws.recv().startswith("4")  # the connect ack or a first event: the client is in
    return ws


def test_a_flood_with_a_stalled_client_keeps_server_memory_bounded(lab_factory, broker_url, fanout):
    lab = lab_factory(broker_url)
    stalled = slow_websocket_client(lab.base_url)
    client = LiveClient(lab.base_url)
    try:
        lab.post("/api/taps", {"exchange": fanout}).raise_for_status()
        body = b"x" * 1000  # about 1.3 kB per event once encoded
        publish_many(broker_url, fanout, 5_000, body)  # warm up: allocator, buffers
        wait_until(lambda: client.seen("tap") >= 5_000, timeout=60, message="warm-up events")
        before = rss_kib(lab.process.pid)
        total = 60_000  # ~80 MB of events: a server buffering for the stalled client would grow by that much
        publish_many(broker_url, fanout, total, body)
        wait_until(lambda: client.seen("tap") >= 5_000 + total, timeout=120, message="flood events seen")
        after = rss_kib(lab.process.pid)
        assert client.seen("tap") == 5_000 + total
        assert client.count("tap") > 0
        growth_mb = (after - before) / 1024
        assert growth_mb < 40, f"server RSS grew by {growth_mb:.0f} MB during the flood"
        health = lab.get("/api/health")
        assert health.ok, "the server still answers"
    finally:
        client.close()
        stalled.close()
