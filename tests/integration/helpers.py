"""Helpers of the integration tests: a recording Socket.IO client and queue shortcuts on the test's own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

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
