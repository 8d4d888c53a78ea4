"""Helpers of the integration tests: a recording Socket.IO client and queue shortcuts on the test's own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pika
import socketio

from tests.conftest import wait_until

LIVE_EVENTS = (
    "published",
    "returned",
    "delivery",
    "ack",
    "nack",
    "consumer",
    "consumers",
    "publish_progress",
    "prediction_check",
)


class LiveEvents:
    """A Socket.IO client that records the traffic events, whether they come one by one or inside ``batch``."""

    def __init__(self, base_url: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self.client = socketio.Client(reconnection=True)
        for name in LIVE_EVENTS:
            self.client.on(name, lambda data, name=name: self._add(name, data))
        self.client.on("batch", self._on_batch)
        self.client.connect(base_url, transports=["websocket"])

    def _add(self, name: str, data: Any) -> None:
        with self._lock:
            self.events.append((name, data))

    def _on_batch(self, batch: dict[str, Any]) -> None:
        for item in batch.get("events", []):
            self._add(item["event"], item["data"])

    def of(self, name: str, where: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        with self._lock:
            return [data for event, data in self.events if event == name and where(data)]

    def wait_for(self, name: str, where: Callable[[Any], bool] = lambda _: True, count: int = 1, timeout=10.0):
        return wait_until(
            lambda: (found := self.of(name, where)) and len(found) >= count and found,
            timeout=timeout,
            message=f"{count} {name} event(s)",
        )

    def close(self) -> None:
        self.client.disconnect()


def declare_queue(amqp, name: str, **kwargs: Any) -> str:
    amqp.fresh_channel().queue_declare(name, **kwargs)
    amqp.queues.append(name)
    return name


def get_one(amqp, queue: str):
    method, props, body = amqp.fresh_channel().basic_get(queue, auto_ack=True)
    assert method is not None, f"no message in {queue}"
    return props, body


def publish_when_up(amqp_url: str, exchange: str, routing_key: str, body: bytes) -> bool:
    """Publish one message on a connection of its own; False while the broker (restarting) takes no connection."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except pika.exceptions.AMQPError:
        return False
    try:
        connection.channel().basic_publish(exchange, routing_key, body)
    finally:
        connection.close()
    return True


class ServerThreads:
    """RPC servers of a test, each ``target(url, queue, ready, stop, *extra)`` in a thread, stopped at the end."""

    def __init__(self) -> None:
        self._running: list[tuple[threading.Thread, threading.Event]] = []

    def __len__(self) -> int:
        return len(self._running)

    def start(self, target: Callable[..., None], url: str, queue: str, *extra: Any) -> None:
        """Run a server and wait (10 s at most) until it says it is ready."""
        ready, stop = threading.Event(), threading.Event()
        thread = threading.Thread(target=target, args=(url, queue, ready, stop, *extra), daemon=True)
        thread.start()
        self._running.append((thread, stop))
        assert ready.wait(10)

    def stop(self) -> None:
        for thread, stop in self._running:
            stop.set()
            thread.join(5)


def serve_until_stopped(connection, channel, queue: str, on_request, ready: threading.Event, stop: threading.Event):
    """Consume ``queue`` with ``on_request`` (prefetch 1), say ``ready``, serve until ``stop``, then close."""
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue, on_request)
    ready.set()
    while not stop.is_set():
        connection.process_data_events(time_limit=0.1)
    connection.close()
