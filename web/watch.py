"""The watch area: taps and the firehose trace. HTTP API and Socket.IO events.

Routes: ``POST/GET /api/taps``, ``DELETE /api/taps/<id>``, ``GET/POST /api/trace``.
Socket.IO: ``tap`` and ``trace`` (high rate, through the hub's batcher), ``taps`` (the tap list) and
``trace_status`` (low rate, on every change and to each new client).
In process: ``lab.services["watch"].add_trace_listener(fn)`` gets every trace event dict.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response
from pydantic import Field

from rabbit import validation
from rabbit.errors import LabError
from rabbit.management import ManagementUnavailable
from rabbit.tap import Tap
from rabbit.trace import Firehose
from rabbit.urls import redact_url, vhost_of
from web.api import ApiModel, api
from web.lab import Lab, current_lab
from web.limits import Slots

log = logging.getLogger(__name__)

bp = Blueprint("watch", __name__)

TraceListener = Callable[[dict[str, Any]], None]


class TapIn(ApiModel):
    exchange: str = Field(max_length=255, description="the exchange to watch ('' is the default exchange)")
    binding_key: str = Field(default="", max_length=255, description="the binding (routing) key, '#' for all")
    arguments: dict[str, Any] | None = Field(
        default=None, description="binding arguments, e.g. for a headers exchange {'x-match': 'all', ...}"
    )


class TraceIn(ApiModel):
    enabled: bool


class WatchService:
    """The taps and the firehose of one lab."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.taps: dict[str, Tap] = {}
        self._lock = threading.Lock()
        self.tap_slots = Slots(
            lab.settings.max_taps,
            "at most {limit} taps at a time (RABBITLENS_MAX_TAPS): delete one first",
            code="PRECONDITION_FAILED",
        )
        self._trace_listeners: list[TraceListener] = []
        self.firehose = Firehose(
            lab.settings.amqp_url,
            lab.management,
            vhost_of(lab.settings.amqp_url),
            on_event=self._on_trace,
            skip=self._is_own_traffic,
            on_change=lambda _status: self.lab.hub.broadcast("trace_status", self.trace_status(check=False)),
        )
        # A trace a killed lab left on: switched off in the background (the management API may be slow or away).
        threading.Thread(target=self.firehose.clear_stale_trace, name="rabbitlens-stale-trace", daemon=True).start()

    # ----------------------------------------------------------------- taps
    def create_tap(self, exchange: str, binding_key: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        # The shared checks (255 bytes of UTF-8, no control characters, tables pika can encode that fit a frame):
        # a tap re-declares and re-binds after every reconnect, so a bad one would reconnect in a loop.
        exchange = validation.check_name(exchange, "exchange", allow_empty=True)
        binding_key = validation.check_routing_key(binding_key, "binding_key")
        arguments = validation.check_table(arguments, "tap arguments", frame_max=self.lab.link.frame_max)
        with self.tap_slots.reserve(lambda: len(self.taps)):  # taps still starting count too
            if exchange:  # 404 at once for a missing exchange (the default exchange '' always exists)
                self.lab.link.call(lambda ch: ch.exchange_declare(exchange, passive=True))
            tap = Tap(
                self.lab.settings.amqp_url,
                exchange,
                binding_key,
                arguments,
                on_event=self.lab.hub.publish,
                on_change=lambda _tap: self._taps_changed(),
            )
            tap.start(timeout=self.lab.settings.broker_timeout_s)
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

    def _taps_changed(self) -> None:
        self.lab.hub.broadcast("taps", self.list_taps())

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
        spies = self.lab.services.get("spies")  # and its spies' shadow queues
        return any(tap.queue == event["queue"] for tap in list(self.taps.values())) or bool(
            spies and spies.owns(event["queue"])
        )

    def _on_trace(self, name: str, event: dict[str, Any]) -> None:
        self.lab.hub.publish(name, event)
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
            management_url=redact_url(self.lab.management.base_url),
            broker_tracing=self.firehose.broker_tracing() if check and reason is None else None,
        )
        return status

    def set_trace(self, enabled: bool) -> dict[str, Any]:
        if enabled:
            try:
                self.firehose.enable(timeout=self.lab.settings.broker_timeout_s)
            except ManagementUnavailable as exc:
                if exc.message.startswith("trace needs"):
                    raise
                base = redact_url(self.lab.management.base_url)
                raise ManagementUnavailable(f"trace needs the management API at {base}: {exc.message}") from None
        else:
            self.firehose.disable()
        return self.trace_status()

    # ----------------------------------------------------------------- lifecycle
    def send_state(self, sid: str) -> None:
        self.lab.hub.send_to(sid, "taps", self.list_taps())
        self.lab.hub.send_to(sid, "trace_status", self.trace_status(check=False))

    def stop(self) -> None:
        with self._lock:
            taps, self.taps = list(self.taps.values()), {}
        for tap in taps:
            tap.stop()
        self.firehose.disable()


def service() -> WatchService:
    return current_lab().services["watch"]


@api.route(bp, "/api/taps", "POST", summary="Tap an exchange", body=TapIn, responses={201: "The new tap"})
def create_tap(body: TapIn) -> tuple[dict[str, Any], int]:
    return service().create_tap(body.exchange, body.binding_key, body.arguments), 201


@api.route(bp, "/api/taps", "GET", summary="List the taps")
def list_taps() -> Response:
    from flask import jsonify

    return jsonify(service().list_taps())


@api.route(bp, "/api/taps/<tap_id>", "DELETE", summary="Remove a tap", responses={204: "Removed", 404: "No such tap"})
def delete_tap(tap_id: str) -> tuple[str, int]:
    service().delete_tap(tap_id)
    return "", 204


@api.route(bp, "/api/trace", "GET", summary="Whether the firehose trace runs, and why not if it cannot")
def get_trace() -> dict[str, Any]:
    return service().trace_status()


@api.route(
    bp,
    "/api/trace",
    "POST",
    summary="Switch the firehose trace on or off",
    body=TraceIn,
    responses={200: "The trace state", 503: "No management API"},
)
def set_trace(body: TraceIn) -> dict[str, Any]:
    return service().set_trace(body.enabled)


def init_app(app: Flask, lab: Lab) -> None:
    watch = WatchService(lab)
    lab.services["watch"] = watch
    lab.shutdown_hooks.append(watch.stop)
    lab.hub.connect_hooks.append(watch.send_state)
    app.register_blueprint(bp)
