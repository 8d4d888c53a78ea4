"""The watch area: taps (a queue of the lab's own bound to an exchange: copies, nothing stolen) and the firehose
trace of the vhost.

Events: ``tap`` and ``trace`` (high rate), ``taps`` (the tap list) and ``trace_status`` (low rate, on every
change; :meth:`WatchService.state_events` for a new listener). In process, :meth:`WatchService.add_trace_listener`
gets every trace event dict (the RPC inspector listens there).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from lab.events import EventSink
from lab.limits import Slots
from lab.settings import Settings
from rabbit import validation
from rabbit.connection import BrokerLink
from rabbit.errors import LabError
from rabbit.management import ManagementClient, ManagementUnavailable
from rabbit.tap import Tap
from rabbit.trace import Firehose
from rabbit.urls import redact_url, vhost_of

log = logging.getLogger(__name__)

TraceListener = Callable[[dict[str, Any]], None]


class WatchService:
    """The taps and the firehose of one lab."""

    def __init__(
        self, settings: Settings, events: EventSink, *, link: BrokerLink, management: ManagementClient
    ) -> None:
        self.settings = settings
        self.events = events
        self.link = link
        self.management = management
        self._lock = threading.Lock()  # guards taps
        self.taps: dict[str, Tap] = {}
        self.tap_slots = Slots(
            settings.max_taps,
            "at most {limit} taps at a time (RABBITLENS_MAX_TAPS): delete one first",
            code="PRECONDITION_FAILED",
        )
        # Other queues of the lab's own whose deliveries the trace leaves out (the spies' shadow queues).
        self.owns_elsewhere: Callable[[str], bool] = lambda _queue: False
        self._trace_listeners: list[TraceListener] = []
        self.firehose = Firehose(
            settings.amqp_url,
            management,
            vhost_of(settings.amqp_url),
            on_event=self._on_trace,
            skip=self._is_own_traffic,
            on_change=lambda _status: self.events.emit("trace_status", self.trace_status(check=False)),
        )
        # A trace a killed lab left on: switched off in the background (the management API may be slow or away).
        threading.Thread(target=self.firehose.clear_stale_trace, name="rabbitlens-stale-trace", daemon=True).start()

    # ----------------------------------------------------------------- taps
    def create_tap(self, exchange: str, binding_key: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        # The shared checks (255 bytes of UTF-8, no control characters, tables pika can encode that fit a frame):
        # a tap re-declares and re-binds after every reconnect, so a bad one would reconnect in a loop.
        exchange = validation.check_name(exchange, "exchange", allow_empty=True)
        binding_key = validation.check_routing_key(binding_key, "binding_key")
        arguments = validation.check_table(arguments, "tap arguments", frame_max=self.link.frame_max)
        with self.tap_slots.reserve(lambda: len(self.taps)):  # taps still starting count too
            if exchange:  # 404 at once for a missing exchange (the default exchange '' always exists)
                self.link.call(lambda ch: ch.exchange_declare(exchange, passive=True))
            tap = Tap(
                self.settings.amqp_url,
                exchange,
                binding_key,
                arguments,
                on_event=self.events.stream,
                on_change=lambda _tap: self._taps_changed(),
            )
            tap.start(timeout=self.settings.broker_timeout_s)
            with self._lock:
                self.taps[tap.id] = tap
        self._taps_changed()
        return tap.describe()

    def list_taps(self) -> list[dict[str, Any]]:
        return [tap.describe() for tap in list(self.taps.values())]

    def delete_tap(self, tap_id: str) -> None:
        with self._lock:
            tap = self.taps.pop(tap_id, None)
        if tap is None:
            raise LabError(f"no tap {tap_id!r}", code="NOT_FOUND")
        tap.stop()
        self._taps_changed()

    def tap_bindings(self) -> list[dict[str, Any]]:
        """The bindings of the lab's own active taps (their exact arguments), for the routing engine: they take
        copies on the broker, so predictions count them, marked as the lab's."""
        found = []
        for tap in list(self.taps.values()):
            if tap.state == "active" and tap.queue and tap.exchange:
                found.append(
                    {
                        "source": tap.exchange,
                        "destination": tap.queue,
                        "destination_type": "queue",
                        "routing_key": tap.binding_key,
                        "arguments": dict(tap.arguments or {}),
                        "lab": "tap",
                    }
                )
        return found

    def _taps_changed(self) -> None:
        self.events.emit("taps", self.list_taps())

    # ----------------------------------------------------------------- trace
    def add_trace_listener(self, fn: TraceListener) -> None:
        """``fn(event)`` for every trace event (in the trace consumer's greenlet: keep it quick)."""
        self._trace_listeners.append(fn)

    def remove_trace_listener(self, fn: TraceListener) -> None:
        if fn in self._trace_listeners:
            self._trace_listeners.remove(fn)

    def _is_own_traffic(self, event: dict[str, Any]) -> bool:
        """The lab's taps are traced too (one ``deliver`` per tapped message): leave those out."""
        if event["kind"] != "deliver":
            return False
        queue = event["queue"]
        return any(tap.queue == queue for tap in list(self.taps.values())) or self.owns_elsewhere(queue)

    def _on_trace(self, name: str, event: dict[str, Any]) -> None:
        self.events.stream(name, event)
        for fn in list(self._trace_listeners):
            try:
                fn(event)
            except Exception:
                log.exception("trace listener failed")

    def trace_status(self, *, check: bool = True) -> dict[str, Any]:
        """The firehose state; ``check`` also asks the broker whether it traces the vhost (one HTTP call)."""
        status = self.firehose.status()
        reason = None if status["enabled"] else self.firehose.unavailable_reason()
        status.update(
            available=reason is None,
            reason=reason,
            management_url=redact_url(self.management.base_url),
            broker_tracing=self.firehose.broker_tracing() if check and reason is None else None,
        )
        return status

    def set_trace(self, enabled: bool) -> dict[str, Any]:
        if enabled:
            try:
                self.firehose.enable(timeout=self.settings.broker_timeout_s)
            except ManagementUnavailable as exc:
                if exc.message.startswith("trace needs"):
                    raise
                base = redact_url(self.management.base_url)
                raise ManagementUnavailable(f"trace needs the management API at {base}: {exc.message}") from None
        else:
            self.firehose.disable()
        return self.trace_status()

    # ----------------------------------------------------------------- lifecycle
    def state_events(self) -> list[tuple[str, Any]]:
        """What a new listener is sent to catch up: the tap list and the trace state."""
        return [("taps", self.list_taps()), ("trace_status", self.trace_status(check=False))]

    def stop(self) -> None:
        with self._lock:
            taps, self.taps = list(self.taps.values()), {}
        for tap in taps:
            tap.stop()
        self.firehose.disable()
