"""Taps: watch what an exchange routes without taking messages from anyone.

A tap is an exclusive, auto-delete, server-named queue of its own, bound to the exchange, on a connection of
its own (a :class:`~rabbit.connection.BrokerLink` that re-declares and re-binds after every reconnect),
consumed with auto-ack. The application's own queues get their copies as before; the tap gets one more copy,
which it turns into ``tap`` events for the injected ``on_event(name, payload)`` sink: the message in the one shape
of :mod:`rabbit.message_view`, plus ``tap_id``, ``seq`` and ``time``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions as pex

from rabbit.connection import BrokerLink
from rabbit.errors import BrokerError, BrokerUnavailable
from rabbit.message_view import delivered_view
from rabbit.owners import failures_reported
from rabbit.properties import json_safe

log = logging.getLogger(__name__)

TAP_PREVIEW_BYTES = 1024  # of each tapped body the page sees (a flood of copies stays light)
# Yield to the other greenlets (the live flusher, the web server) every so many messages of a flood.
YIELD_EVERY = 64

OnEvent = Callable[[str, dict[str, Any]], None]
Binding = tuple[str, str, "dict[str, Any] | None"]  # (source exchange, binding key, arguments)


class Tap:
    """One tap: ``start()`` binds and consumes (raises :class:`BrokerError` / :class:`BrokerUnavailable`)."""

    def __init__(
        self,
        amqp_url: str,
        exchange: str,
        binding_key: str = "",
        arguments: dict[str, Any] | None = None,
        *,
        on_event: OnEvent,
        on_change: Callable[[Tap], None] | None = None,
        tap_id: str | None = None,
        preview_bytes: int = TAP_PREVIEW_BYTES,
        bindings: list[Binding] | None = None,
    ) -> None:
        self.id = tap_id or uuid.uuid4().hex[:8]
        # What the queue is bound with: the one (exchange, key, arguments), or ``bindings`` when given (a spy's set,
        # possibly empty, changed later with :meth:`set_bindings`); re-bound after every reconnect.
        one: Binding = (exchange, binding_key, dict(arguments) if arguments else None)
        self.bindings: list[Binding] = list(bindings) if bindings is not None else [one]
        self.exchange = exchange
        self.binding_key = binding_key
        self.arguments = dict(arguments) if arguments else None
        self.queue: str | None = None
        self.state = "starting"
        self.error: str | None = None
        self.count = 0
        self.errors = 0  # messages whose handling failed (reported in ``error``; the tap goes on)
        self.created = time.time()
        self._on_event = on_event
        self._on_change = on_change
        self._preview_bytes = preview_bytes
        self._setup_error: Exception | None = None
        self._setup_done = threading.Event()
        self._link = BrokerLink(
            amqp_url,
            name=f"rabbitlens-tap-{self.id}",
            on_connected=self._on_connected,
            on_status=self._on_link_status,
        )

    # ----------------------------------------------------------------- control
    def start(self, timeout: float = 10.0) -> Tap:
        self._link.start()
        if not self._setup_done.wait(timeout):
            self.stop()
            raise BrokerUnavailable(f"the tap on {self.exchange!r} could not connect within {timeout:g} s")
        if self._setup_error is not None:
            self.stop()
            raise self._setup_error
        return self

    def stop(self) -> None:
        """Close the tap's connection: the broker deletes its exclusive queue."""
        if self.state != "stopped":
            self.state = "stopped"
            self._link.stop()

    def set_bindings(self, bindings: list[Binding], timeout: float = 10.0) -> tuple[list[Binding], list[Binding]]:
        """Bind the queue with exactly ``bindings`` now (binds the new ones, unbinds the gone ones, on the tap's
        own connection: the queue is exclusive to it); ``(added, removed)``. Raises :class:`BrokerError` /
        :class:`BrokerUnavailable`; what was done before an error is kept in :attr:`bindings`."""
        old, new = [_key(b) for b in self.bindings], [_key(b) for b in bindings]
        added = [b for b, k in zip(bindings, new, strict=True) if k not in old]
        removed = [b for b, k in zip(self.bindings, old, strict=True) if k not in new]
        queue = self.queue
        for binding, bind in [(b, True) for b in added] + [(b, False) for b in removed]:
            if queue is not None:
                verb = "queue_bind" if bind else "queue_unbind"
                try:
                    self._link.call(
                        lambda ch, b=binding, v=verb: getattr(ch, v)(queue, b[0], routing_key=b[1], arguments=b[2]),
                        timeout=timeout,
                    )
                except BrokerError:
                    if bind:
                        raise  # an unbind that fails (its exchange was deleted) leaves nothing bound: done
            if bind:
                self.bindings.append(binding)
            else:
                self.bindings = [b for b in self.bindings if _key(b) != _key(binding)]
        return added, removed

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exchange": self.exchange,
            "binding_key": self.binding_key,
            "arguments": json_safe(self.arguments) if self.arguments else None,
            "queue": self.queue,
            "state": self.state,
            "error": self.error,
            "count": self.count,
            "errors": self.errors,
            "created": self.created,
        }

    # ----------------------------------------------------------------- owner side
    def _on_connected(self, connection: pika.BlockingConnection) -> None:
        """Runs in the link's owner after every (re)connect: declare, bind, consume."""
        try:
            channel = connection.channel()
            result = channel.queue_declare("", exclusive=True, auto_delete=True)
            queue = result.method.queue
            for source, key, args in list(self.bindings):
                channel.queue_bind(queue, source, routing_key=key, arguments=args)
            channel.basic_consume(queue, self._on_message, auto_ack=True)
        except pex.ChannelClosedByBroker as exc:
            error = BrokerError.from_pika(exc)
            self._setup_error = error
            self.error = error.summary()
            self.state = "error"
            self._setup_done.set()
            self._changed()
            return
        self.queue = queue
        self.error = None
        self.state = "active"
        self._setup_error = None
        self._setup_done.set()
        self._changed()

    def _on_link_status(self, status: dict[str, Any]) -> None:
        if self.state == "stopped":
            return
        if not status.get("connected") and self.state == "active":
            self.state = "reconnecting"
            self.error = status.get("error")
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            with contextlib.suppress(Exception):
                self._on_change(self)

    def _on_message(self, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        """pika's callback: a message the tap cannot handle is reported on the tap (state ``error``, the reason,
        ``errors`` counted), which goes on; an exception let out here would end the link's owner."""
        with failures_reported(self._handling_failed):
            self._handle(method, properties, body)

    def _handling_failed(self, exc: Exception) -> None:
        self.errors += 1
        self.error = f"could not handle message {self.count}: {type(exc).__name__}: {exc}"[:500]
        self.state = "error"
        log.warning("tap %s on %r: %s", self.id, self.exchange, self.error)
        log.debug("tap %s: handling failed", self.id, exc_info=exc)
        self._changed()

    def _handle(self, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        self.count += 1
        event = delivered_view(method, properties, body, self._preview_bytes)
        event.update(tap_id=self.id, seq=self.count, time=time.time())
        self._on_event("tap", event)
        if self.count % YIELD_EVERY == 0:
            time.sleep(0)  # under gevent: let the flusher and the web server run during a flood


def _key(binding: Binding) -> tuple[str, str, str]:
    """What tells two bindings of one queue apart: source, key and arguments."""
    return binding[0], binding[1], repr(sorted((binding[2] or {}).items()))
