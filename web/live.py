"""The bridge from ``rabbit/`` events to Socket.IO clients."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask_socketio import SocketIO

log = logging.getLogger(__name__)


class LiveHub:
    """Sends events to the browsers. ``rabbit/`` code gets :meth:`sink` as its ``on_event`` callback."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio
        # Called with a new client's sid: each area sends that client its current state (re-sync on reconnect).
        self.connect_hooks: list[Callable[[str], None]] = []

    def broadcast(self, event: str, payload: Any) -> None:
        """Send one event to every connected client now (for low-rate events: status, topology)."""
        try:
            self.socketio.emit(event, payload)
        except Exception:
            log.exception("emit of %s failed", event)

    def send_to(self, sid: str, event: str, payload: Any) -> None:
        self.socketio.emit(event, payload, to=sid)

    def publish(self, event: str, payload: Any) -> None:
        """Queue a high-rate event (delivery, tap, trace, rpc_*...) for every client.

        The contract: a client receives it either as its own Socket.IO event ``event`` with ``payload``, or,
        under load, inside a ``batch`` event ``{"events": [{"event": name, "data": payload}, ...], ...}``.
        The page's socket module unpacks batches, so panels just subscribe to ``event``.
        """
        self.broadcast(event, payload)

    def sink(self, event: str, payload: Any) -> None:
        """The ``on_event(name, payload)`` callback handed to ``rabbit/`` code."""
        self.publish(event, payload)

    def client_connected(self, sid: str) -> None:
        for hook in self.connect_hooks:
            try:
                hook(sid)
            except Exception:
                log.exception("connect hook failed")
