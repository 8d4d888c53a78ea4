"""The firehose: every publish and every delivery in a vhost, as the broker reports them.

With tracing on for a vhost, RabbitMQ copies each message published in it to ``amq.rabbitmq.trace`` with the
routing key ``publish.<exchange>``, and each message delivered to a consumer with ``deliver.<queue>``, adding
headers that say where it went (``routed_queues``, ``exchange_name``, ``routing_keys``, ``properties``,
``connection``, ``channel``, ``user``, ``node``). :func:`parse_trace_message` turns one such copy into a
``trace`` event (pure); :class:`Firehose` switches tracing on and off through the management API and consumes
the copies from an exclusive queue on a connection of its own.

A lab that switches tracing on leaves a marker file (its pid, in a folder only its user can read): if the lab is
killed (``kill -9``) before it can switch tracing off, the next lab on this machine finds the marker of a dead
pid and switches the broker's tracing off (:meth:`Firehose.clear_stale_trace`); tracing someone else switched
on is never touched.

The broker does not trace what is published to the trace exchange itself, so consuming the firehose makes no
loop. It does trace the lab's own taps (each tapped message is one more ``deliver.<tap queue>``): a ``skip``
predicate lets the caller leave those out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pika.exceptions as pex

from rabbit.connection import BrokerLink
from rabbit.errors import BrokerError, BrokerUnavailable
from rabbit.localnode import pid_alive
from rabbit.management import ManagementClient, ManagementUnavailable
from rabbit.message_view import message_view
from rabbit.owners import failures_reported
from rabbit.properties import json_safe
from rabbit.tap import YIELD_EVERY

log = logging.getLogger(__name__)

TRACE_EXCHANGE = "amq.rabbitmq.trace"
TRACE_PREVIEW_BYTES = 4096
# A restarted node forgets that a vhost was traced: after a reconnect, try this long to switch it on again
# (the management API may answer a little after AMQP does).
RETRACE_FOR_S = 60.0
RETRACE_INTERVAL_S = 1.0

OnEvent = Callable[[str, dict[str, Any]], None]


def default_marker_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"rabbitlens-trace-{os.getuid()}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def parse_trace_message(
    routing_key: str, headers: dict[str, Any] | None, body: bytes, received: float
) -> dict[str, Any] | None:
    """One message from ``amq.rabbitmq.trace`` as a ``trace`` event, or None if it is not a trace copy.

    The copied message in the one shape of :mod:`rabbit.message_view` (its ``id`` is the lab id when the lab
    published it), plus where the broker says it went: ``kind`` (publish / deliver), ``routing_keys``,
    ``routed_queues``, ``queue`` (of a deliver), and who: ``connection``, ``channel``, ``user``, ``node``, ``vhost``.
    ``correlation_id`` and ``reply_to`` repeat the properties as text, for the RPC inspector.
    """
    kind, _, name = routing_key.partition(".")
    if kind not in ("publish", "deliver"):
        return None
    headers = headers or {}
    properties = json_safe(headers.get("properties") or {})
    if not isinstance(properties, dict):
        properties = {}
    if not isinstance(properties.get("headers"), dict | None):
        properties["headers"] = {}
    routing_keys = headers.get("routing_keys") or []
    if not isinstance(routing_keys, list):
        routing_keys = [routing_keys]
    routed = headers.get("routed_queues") or []
    if not isinstance(routed, list):
        routed = [routed]
    view = message_view(
        _text(headers.get("exchange_name")) or "",
        _text(routing_keys[0]) if routing_keys else "",
        properties,
        body,
        redelivered=bool(headers.get("redelivered")) if kind == "deliver" else None,
        limit=TRACE_PREVIEW_BYTES,
    )
    return {
        **view,
        "kind": kind,
        "routing_keys": [_text(k) for k in routing_keys],
        "routed_queues": [_text(q) for q in routed],
        "queue": name if kind == "deliver" else None,
        "correlation_id": _text(properties.get("correlation_id")),
        "reply_to": _text(properties.get("reply_to")),
        "connection": _text(headers.get("connection")),
        "channel": headers.get("channel"),
        "user": _text(headers.get("user")),
        "node": _text(headers.get("node")),
        "vhost": _text(headers.get("vhost")),
        "time": received,
    }


class Firehose:
    """Tracing for one vhost: on/off through the management API, and a consumer of the copies.

    ``on_event("trace", event)`` gets each event; ``skip(event)`` returning True leaves one out (counted).
    ``on_change(status)`` is called on every state change with :meth:`status`.
    """

    def __init__(
        self,
        amqp_url: str,
        management: ManagementClient,
        vhost: str,
        *,
        on_event: OnEvent,
        skip: Callable[[dict[str, Any]], bool] | None = None,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        marker_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.amqp_url = amqp_url
        key = hashlib.sha256(f"{management.base_url}\n{vhost}".encode("utf-8", "replace")).hexdigest()[:24]
        self.marker = Path(marker_dir or default_marker_dir()) / f"{key}.json"
        self.management = management
        self.vhost = vhost
        self._on_event = on_event
        self._skip = skip
        self._on_change = on_change
        self._lock = threading.Lock()
        self._link: BrokerLink | None = None
        self._setup_done = threading.Event()
        self._setup_error: Exception | None = None
        self.enabled = False
        self.turned_on_by_lab = False
        self.queue: str | None = None
        self.count = 0
        self.skipped = 0
        self.errors = 0  # trace copies whose handling failed (reported in ``error``; tracing goes on)
        self.error: str | None = None

    # ----------------------------------------------------------------- control
    def unavailable_reason(self) -> str | None:
        """Why trace cannot run here (None when it can)."""
        if self.management.available():
            return None
        return f"trace needs the management API at {self.management.base_url}, which does not answer"

    def broker_tracing(self) -> bool | None:
        """Whether the broker traces the vhost now (None when the management API cannot say)."""
        from urllib.parse import quote

        try:
            info = self.management.get(f"/api/vhosts/{quote(self.vhost, safe='')}")
        except ManagementUnavailable:
            return None
        return bool(info.get("tracing")) if isinstance(info, dict) else None

    def enable(self, timeout: float = 10.0) -> dict[str, Any]:
        with self._lock:
            if self.enabled:
                return self.status()
            if not self.management.available(refresh=True):
                raise ManagementUnavailable(
                    f"trace needs the management API at {self.management.base_url}, which does not answer"
                )
            already = self.broker_tracing()
            self._start_consumer(timeout)
            if not already:
                try:
                    self.management.set_tracing(self.vhost, True)
                except ManagementUnavailable:
                    self._stop_consumer()
                    raise
                self.turned_on_by_lab = True
                self._write_marker()
            self.enabled = True
            self.error = None
        self._changed()
        return self.status()

    def disable(self) -> dict[str, Any]:
        """Stop consuming; switch the broker's tracing off if the lab switched it on."""
        with self._lock:
            was = self.enabled
            self.enabled = False
            self._stop_consumer()
            if self.turned_on_by_lab:
                try:
                    self.management.set_tracing(self.vhost, False)
                    self.turned_on_by_lab = False
                    self._remove_marker()
                except ManagementUnavailable as exc:
                    self.error = f"could not switch tracing off: {exc.message}"
        if was:
            self._changed()
        return self.status()

    # ----------------------------------------------------------------- a trace a killed lab left on
    def _write_marker(self) -> None:
        try:
            self.marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.marker.with_suffix(".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "vhost": self.vhost, "since": time.time()}))
            os.replace(tmp, self.marker)
        except OSError as exc:
            log.warning("cannot write the trace marker %s: %s", self.marker, exc)

    def _remove_marker(self) -> None:
        with contextlib.suppress(OSError):
            self.marker.unlink()

    def clear_stale_trace(self) -> str | None:
        """If a lab that is gone left tracing on for this vhost, switch it off; what was done (None: nothing).

        A marker of a running lab (another instance on this machine) is left alone, and so is tracing without a
        marker (someone switched it on deliberately). Without the management API the marker stays for next time.
        """
        try:
            owner = json.loads(self.marker.read_text()).get("pid")
        except (OSError, ValueError, AttributeError):
            return None
        if isinstance(owner, int) and owner != os.getpid() and pid_alive(owner):
            return None
        with self._lock:
            if self.enabled:  # this lab traces now: the marker is its own
                return None
            tracing = self.broker_tracing()
            if tracing is None:
                return None
            if tracing:
                try:
                    self.management.set_tracing(self.vhost, False)
                except ManagementUnavailable:
                    return None
            self._remove_marker()
        if not tracing:
            return None
        note = f"switched off the trace of vhost {self.vhost!r} that a lab which is gone (pid {owner}) left on"
        log.info("%s", note)
        return note

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "vhost": self.vhost,
            "queue": self.queue,
            "events": self.count,
            "skipped_own": self.skipped,
            "errors": self.errors,
            "turned_on_by_lab": self.turned_on_by_lab,
            "error": self.error,
        }

    # ----------------------------------------------------------------- the consumer
    def _start_consumer(self, timeout: float) -> None:
        self._setup_done.clear()
        self._setup_error = None
        link = BrokerLink(self.amqp_url, name="rabbitlens-trace", on_connected=self._on_connected)
        self._link = link
        link.start()
        if not self._setup_done.wait(timeout):
            self._stop_consumer()
            raise BrokerUnavailable(f"the trace consumer could not connect within {timeout:g} s")
        if self._setup_error is not None:
            self._stop_consumer()
            raise self._setup_error

    def _stop_consumer(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.stop()
        self.queue = None

    def _on_connected(self, connection: pika.BlockingConnection) -> None:
        try:
            channel = connection.channel()
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.queue_bind(queue, TRACE_EXCHANGE, routing_key="#")
            channel.basic_consume(queue, self._on_message, auto_ack=True)
        except pex.ChannelClosedByBroker as exc:
            self._setup_error = BrokerError.from_pika(exc)
            self.error = str(self._setup_error)
            self._setup_done.set()
            return
        self.queue = queue
        self._setup_done.set()
        if self.enabled:  # a reconnect: say the queue changed, and trace again if a broker restart forgot it
            self._changed()
            link = self._link
            threading.Thread(target=self._retrace, args=(link,), name="rabbitlens-retrace", daemon=True).start()

    def _retrace(self, link: BrokerLink | None) -> None:
        """Switch the broker's tracing back on after a reconnect, unless it is on (not in the link's owner:
        the management API may need a few seconds more than AMQP after a restart)."""
        deadline = time.monotonic() + RETRACE_FOR_S
        while time.monotonic() < deadline:
            with self._lock:  # against disable(): never switch tracing on after the lab switched it off
                if not self.enabled or self._link is not link:
                    return
                tracing = self.broker_tracing()
                if tracing is True:
                    return
                if tracing is False:
                    try:
                        self.management.set_tracing(self.vhost, True)
                    except ManagementUnavailable:
                        pass
                    else:
                        log.info(
                            "the broker had stopped tracing vhost %r (a restart?): switched it on again", self.vhost
                        )
                        self.turned_on_by_lab = True
                        self._write_marker()
                        self.error = None
                        break
            time.sleep(RETRACE_INTERVAL_S)
        else:
            self.error = "the broker stopped tracing this vhost and the lab could not switch it on again"
        self._changed()

    def _on_message(self, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        """pika's callback: a trace copy that cannot be handled is reported (``error``, ``errors``), and tracing
        goes on; an exception let out here would end the link's owner."""
        with failures_reported(self._handling_failed):
            self._handle(method, properties, body)

    def _handling_failed(self, exc: Exception) -> None:
        self.errors += 1
        self.error = f"could not handle a trace copy: {type(exc).__name__}: {exc}"[:500]
        log.warning("trace on %r: %s", self.vhost, self.error)
        log.debug("trace: handling failed", exc_info=exc)
        self._changed()

    def _handle(self, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        event = parse_trace_message(method.routing_key, properties.headers, body, time.time())
        if event is None:
            return
        if self._skip is not None and self._skip(event):
            self.skipped += 1
            return
        self.count += 1
        self._on_event("trace", event)
        if self.count % YIELD_EVERY == 0:
            time.sleep(0)

    def _changed(self) -> None:
        if self._on_change is not None:
            with contextlib.suppress(Exception):
                self._on_change(self.status())
