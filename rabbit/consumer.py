"""Consumers with the tutorials' knobs: ack mode, prefetch, work time, and what to do with each message.

Each :class:`Consumer` has its own connection (a :class:`BrokerLink`) whose owner runs the message callback,
so a consumer that "works" 60 s on a message stalls no one else. After a reconnect the link calls
:meth:`Consumer._on_connected` again, which re-issues ``basic.qos`` and ``basic.consume``: the consumer
re-attaches by itself after a broker restart.

``on_message``: ``ack`` (basic.ack), ``reject`` (basic.reject, no requeue), ``nack_requeue`` (basic.nack with
requeue: the broker delivers it again, ``redelivered`` set), ``crash`` (close the channel without acking, as a
worker that dies: with manual acks the broker redelivers the message to another consumer; with auto-ack it is
already gone).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel

from rabbit.connection import CONNECTED, CONNECTION_LOST, BrokerLink
from rabbit.errors import BrokerError, BrokerUnavailable, InvalidInput
from rabbit.message_view import TIME_HEADER, delivered_view, message_view

log = logging.getLogger(__name__)

ACK_MODES = ("auto", "manual")
ACTIONS = ("ack", "reject", "nack_requeue", "crash")
PREFETCH_MAX = 1000
WORK_MS_MAX = 60_000

# States a consumer goes through. ``error``: handling a message failed (``error`` says why); it goes on consuming.
STARTING, CONSUMING, RECONNECTING, STOPPED, CRASHED, FAILED, CANCELLED, ERROR = (
    "starting",
    "consuming",
    "reconnecting",
    "stopped",
    "crashed",
    "failed",
    "cancelled",
    "error",
)
FINAL_STATES = (STOPPED, CRASHED, FAILED, CANCELLED)

EventSink = Callable[[str, dict[str, Any]], None]


def check_knobs(ack: str, prefetch: int, work_ms: int, on_message: str) -> None:
    """Raise :class:`InvalidInput` for a combination the broker would refuse or that means nothing."""
    if ack not in ACK_MODES:
        raise InvalidInput(f"ack must be one of {', '.join(ACK_MODES)}")
    if on_message not in ACTIONS:
        raise InvalidInput(f"on_message must be one of {', '.join(ACTIONS)}")
    if not 0 <= prefetch <= PREFETCH_MAX:
        raise InvalidInput(f"prefetch must be between 0 and {PREFETCH_MAX}")
    if not 0 <= work_ms <= WORK_MS_MAX:
        raise InvalidInput(f"work_ms must be between 0 and {WORK_MS_MAX}")
    if ack == "auto" and on_message in ("reject", "nack_requeue"):
        raise InvalidInput(
            f"on_message {on_message} needs ack=manual: with auto-ack the broker counts a message as acked on delivery"
        )


class Consumer:
    """One AMQP consumer on its own connection. Counters are exact and only written by the owner."""

    def __init__(
        self,
        url: str,
        queue: str,
        on_event: EventSink,
        *,
        ack: str = "manual",
        prefetch: int = 0,
        work_ms: int = 0,
        on_message: str = "ack",
        consumer_id: str | None = None,
    ) -> None:
        check_knobs(ack, prefetch, work_ms, on_message)
        self.id = consumer_id or f"c-{uuid.uuid4().hex[:8]}"
        self.queue = queue
        self.ack = ack
        self.prefetch = prefetch
        self.work_ms = work_ms
        self.on_message = on_message
        self.on_event = on_event
        self.state = STARTING
        self.error: str | None = None
        self.last_error: str | None = None  # the last message this consumer could not handle (kept once it goes on)
        self.created = time.time()
        self.handled = self.acked = self.rejected = self.nacked = self.redelivered = 0
        self.errors = 0  # messages whose handling failed (reported, the consumer goes on)
        self.attachments = 0
        self._stop = threading.Event()
        self._first_attach = threading.Event()
        self._first_error: BaseException | None = None
        self._channel: BlockingChannel | None = None
        # The connection must outlive the longest work: the owner pumps nothing while it "works".
        heartbeat = max(20, math.ceil(work_ms / 1000) * 2 + 10)
        self.link = BrokerLink(
            url,
            name=f"rabbitlens-consumer-{self.id}",
            on_connected=self._on_connected,
            on_status=self._on_link_status,
            heartbeat=heartbeat,
        )

    # ------------------------------------------------------------------ public
    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "ack": self.ack,
            "prefetch": self.prefetch,
            "work_ms": self.work_ms,
            "on_message": self.on_message,
            "state": self.state,
            "handled": self.handled,
            "acked": self.acked,
            "rejected": self.rejected,
            "nacked": self.nacked,
            "redelivered": self.redelivered,
            "errors": self.errors,
            "attachments": self.attachments,
            "error": self.error,
            "last_error": self.last_error,
            "created": self.created,
        }

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def start(self, timeout: float = 10.0) -> Consumer:
        """Connect and attach; raises the broker's refusal (``BrokerError``) or ``BrokerUnavailable``."""
        self.link.start()
        if not self._first_attach.wait(timeout):
            self._stop.set()
            self.link.stop()
            raise BrokerUnavailable(f"consumer on {self.queue!r} could not attach within {timeout:g} s")
        if self._first_error is not None:
            self.link.stop()
            raise self._first_error
        return self

    def stop(self) -> None:
        """Stop consuming: the connection closes, so unacked messages go back to the queue."""
        if self.finished:
            self.link.stop()
            return
        self._stop.set()
        self.link.stop()
        self._set_state(STOPPED, "stopped")

    # ------------------------------------------------------------------ owner side
    def _on_connected(self, connection: pika.BlockingConnection) -> None:
        if self._stop.is_set():
            return
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.prefetch)
            channel.add_on_cancel_callback(self._on_cancelled)
            channel.basic_consume(self.queue, self._on_message, auto_ack=self.ack == "auto")
        except pex.ChannelClosedByBroker as exc:
            error = BrokerError.from_pika(exc)
            self.error = error.summary()
            self._stop.set()
            self.link.stop()
            if not self._first_attach.is_set():
                self._first_error = error
                self.state = FAILED
                self._first_attach.set()
            else:
                self._set_state(FAILED, "failed")
            return
        self._channel = channel
        self.attachments += 1
        self.error = None
        first = not self._first_attach.is_set()
        self.state = CONSUMING
        self._first_attach.set()
        self._emit_state("started" if first else "reattached")

    def _on_link_status(self, status: dict[str, Any]) -> None:
        if self._stop.is_set() or self.finished or not self._first_attach.is_set():
            return
        if status["state"] != CONNECTED and self.state in (CONSUMING, ERROR):
            self.error = status.get("error")
            self._set_state(RECONNECTING, "reconnecting")

    def _on_cancelled(self, method_frame: Any) -> None:
        """The broker cancelled us (the queue was deleted)."""
        self.error = f"the broker cancelled the consumer (queue {self.queue!r} deleted?)"
        self._stop.set()
        self.link.stop()
        self._set_state(CANCELLED, "cancelled")

    def _on_message(
        self, channel: BlockingChannel, method: pika.spec.Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        """pika's callback: whatever goes wrong with one message is reported on this consumer, which goes on
        (an exception let out here would end the link's owner, and with it every later delivery)."""
        if self._stop.is_set():
            return  # not acked: the broker requeues it when the connection closes
        try:
            self._handle(channel, method, props, body)
        except CONNECTION_LOST:
            raise  # the link reconnects and re-attaches
        except Exception as exc:
            self._handling_failed(method, exc)

    def _handle(
        self, channel: BlockingChannel, method: pika.spec.Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        """One message: its ``delivery`` event, then settled as configured (in ``finally``: whatever fails in
        between, the message is acked, rejected or nacked once, unless the consumer stops or crashes on purpose).
        A message handled fine after one that was not takes the consumer from ``error`` back to ``consuming``."""
        now = time.time()
        self.handled += 1
        if method.redelivered:
            self.redelivered += 1
        if self.ack == "auto":
            self.acked += 1
        lab_id: Any = None
        settle = True
        try:
            try:
                event, lab_id = self._delivery_event(method, props, body, now)
            except Exception as exc:  # the message's content: report it, and still settle the message as configured
                self._handling_failed(method, exc)
                event = self._fallback_event(method, body, now)
            else:
                self._handled_fine()
            self._emit("delivery", event)
            if self.work_ms and self._stop.wait(self.work_ms / 1000):
                settle = False
                return  # stopped while working: the message is left unacked
            if self.on_message == "crash":
                settle = False
                self._crash(channel)
                return
        except CONNECTION_LOST:
            settle = False  # nothing to settle on: the broker requeues it with the connection
            raise
        finally:
            if settle:
                self._settle(channel, method, lab_id)

    def _fallback_event(self, method: pika.spec.Basic.Deliver, body: bytes, now: float) -> dict[str, Any]:
        """The ``delivery`` event of a message whose full view failed: the plain view, or only the delivery's own
        fields if even that fails (the failure is already counted once)."""
        fields = {**self._delivery_fields(method, now), "id": None, "error": self.error}
        try:
            view = message_view(method.exchange, method.routing_key, {}, body, redelivered=bool(method.redelivered))
        except Exception:
            log.debug("consumer %s: the fallback view failed too", self.id, exc_info=True)
            return {**fields, "exchange": method.exchange, "routing_key": method.routing_key, "size": len(body)}
        return {**fields, **view, "id": None, "error": self.error}

    def _handled_fine(self) -> None:
        """Back from ``error`` to ``consuming`` (``last_error`` and ``errors`` keep what went wrong)."""
        if self.state == ERROR and not self._stop.is_set():
            self.error = None
            self._set_state(CONSUMING, "consuming")

    def _settle(self, channel: BlockingChannel, method: pika.spec.Basic.Deliver, lab_id: Any) -> None:
        if self.ack == "auto":
            return
        tag = method.delivery_tag
        ack_event = {
            "consumer_id": self.id,
            "queue": self.queue,
            "delivery_tag": tag,
            "id": lab_id,
            "time": time.time(),
        }
        if self.on_message == "ack":
            channel.basic_ack(tag)
            self.acked += 1
            self._emit("ack", ack_event)
        elif self.on_message == "reject":
            channel.basic_reject(tag, requeue=False)
            self.rejected += 1
            self._emit("nack", {**ack_event, "kind": "reject", "requeue": False})
        else:
            channel.basic_nack(tag, requeue=True)
            self.nacked += 1
            self._emit("nack", {**ack_event, "kind": "nack", "requeue": True})

    def _delivery_event(
        self, method: pika.spec.Basic.Deliver, props: pika.BasicProperties, body: bytes, now: float
    ) -> tuple[dict[str, Any], Any]:
        """The ``delivery`` event of one message (:func:`~rabbit.message_view.message_view` plus this consumer's
        fields), and its lab id (None for others' messages)."""
        view = delivered_view(method, props, body)
        published = (view["properties"].get("headers") or {}).get(TIME_HEADER)
        latency = round(now * 1000 - published, 2) if isinstance(published, int | float) else None
        event = {**self._delivery_fields(method, now), **view, "latency_ms": latency}
        return event, view["id"]

    def _delivery_fields(self, method: pika.spec.Basic.Deliver, now: float) -> dict[str, Any]:
        """What a ``delivery`` event says besides the message itself."""
        return {
            "consumer_id": self.id,
            "queue": self.queue,
            "delivery_tag": method.delivery_tag,
            "latency_ms": None,
            "ack": self.ack,
            "time": now,
        }

    def _handling_failed(self, method: Any, exc: BaseException) -> None:
        """Report a message this consumer could not handle: state ``error`` with the reason; it goes on."""
        tag = getattr(method, "delivery_tag", None)
        self.errors += 1
        self.error = f"could not handle message {tag}: {type(exc).__name__}: {exc}"[:500]
        self.last_error = self.error
        log.warning("consumer %s on %r: %s", self.id, self.queue, self.error)
        log.debug("consumer %s: handling failed", self.id, exc_info=exc)
        if not self.finished:
            self.state = ERROR
            self._emit_state("error")

    def _crash(self, channel: BlockingChannel) -> None:
        if self.ack == "auto":  # nothing to requeue: the broker counted it acked when it sent it
            self.error = "crashed on purpose: auto ack: the broker already forgot this message; it is lost"
        else:
            self.error = "crashed on purpose: channel closed without acking; the broker requeues the message"
        self._stop.set()
        try:
            channel.close()
        except Exception:  # the crash is the point; a failing close changes nothing
            log.debug("close on crash failed", exc_info=True)
        self.link.stop()
        self._set_state(CRASHED, "crashed")

    # ------------------------------------------------------------------ events
    def _set_state(self, state: str, change: str) -> None:
        if self.finished and state in FINAL_STATES:
            return
        self.state = state
        self._emit_state(change)

    def _emit_state(self, change: str) -> None:
        self._emit("consumer", {**self.snapshot(), "change": change})

    def _emit(self, name: str, payload: dict[str, Any]) -> None:
        try:
            self.on_event(name, payload)
        except Exception:
            log.exception("event sink failed for %s", name)
