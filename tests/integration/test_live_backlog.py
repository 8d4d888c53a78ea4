"""A browser that stops reading cannot grow the server's memory (issue 15 item 6).

The high-rate feed skipped lagging clients, but low-rate broadcasts (topology, consumers, progress) were queued for
them without bound. Here a raw websocket client connects, then never reads; the lab declares queues (each one a
``topology`` broadcast that grows with the topology). The lab must drop that client, keep its memory bounded, and
tell the page why when it comes back.
"""

from __future__ import annotations

import json
import socket

import socketio
import websocket

from tests.conftest import wait_until


def stalled_client(base_url: str) -> tuple[websocket.WebSocket, str]:
    """A Socket.IO client over a raw websocket that connects and then never reads; its Socket.IO sid."""
    ws = websocket.create_connection(
        base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)],
        timeout=10,
    )
    assert ws.recv().startswith("0")  # the Engine.IO open packet
    ws.send("40")
    while True:  # the state the lab sends each new client comes first; the connect answer is among it
        packet = ws.recv()
        if packet.startswith("40"):
            return ws, json.loads(packet[2:])["sid"]


def test_a_client_that_stops_reading_is_dropped_and_told_why(lab_factory, broker_url, amqp, unique):
    lab = lab_factory(broker_url, RABBITLENS_CLIENT_MAX_BACKLOG_BYTES="2000000").wait_broker_connected()
    ws, sid = stalled_client(lab.base_url)
    rss_before = lab.get("/api/stats").json()["process"]["rss_bytes"]
    pad = "p" * 5_000  # each queue adds 5 kB to every later topology event (150 queues: 56 MB in all)
    try:
        for i in range(150):
            name = unique(f"stall-{i}")
            amqp.queues.append(name)
            answer = lab.post("/api/queues", {"name": name, "arguments": {"x-pad": pad}})
            assert answer.status_code == 201, answer.text
        live = lab.get("/api/stats").json()["live"]
        assert live["clients_dropped"] == 1, live
        # 150 topologies of up to 750 kB each went out (the reading client below would have got them all); without
        # the bound the stalled client's queue held them all: +57 MB here. With it: the last few, then nothing.
        rss_after = lab.get("/api/stats").json()["process"]["rss_bytes"]
        assert rss_after - rss_before < 25 * 1024 * 1024, (rss_before, rss_after)

        # The page comes back (a new session naming the old one) and is told why it was dropped.
        told: list[dict] = []
        page = socketio.Client()
        page.on("client_dropped", told.append)
        page.connect(lab.base_url, transports=["websocket"], auth={"previous_sid": sid})
        try:
            wait_until(lambda: told, message="client_dropped")
            assert told[0]["previous_sid"] == sid
            assert "waiting for it unread" in told[0]["reason"] and told[0]["backlog_bytes"] > 2_000_000
        finally:
            page.disconnect()
        # Others are not affected: a reading client still gets the broadcasts.
        topologies: list[dict] = []
        reader = socketio.Client()
        reader.on("topology", topologies.append)
        reader.connect(lab.base_url, transports=["websocket"])
        try:
            name = unique("after")
            amqp.queues.append(name)
            lab.post("/api/queues", {"name": name})
            wait_until(lambda: any(name in json.dumps(t) for t in topologies), message="the next topology")
        finally:
            reader.disconnect()
    finally:
        ws.sock.close()
