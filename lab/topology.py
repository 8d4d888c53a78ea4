"""The topology area: declare / delete / purge / bind on the main link (each name, key and table checked by
``rabbit.validation`` first), the routing explanations and matrix, the predictions for traffic, and the live feed.

Event ``topology`` (low rate): the ``GET /api/topology`` object, after every change the lab makes, and when a poll
(every few seconds) finds the vhost changed by someone else; :meth:`TopologyService.state_events` for a new
listener.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from lab.events import EventSink
from lab.settings import Settings
from rabbit import validation
from rabbit.connection import BrokerLink
from rabbit.errors import InvalidInput, LabError
from rabbit.management import ManagementClient
from rabbit.topology import Topology
from rabbit.urls import vhost_of

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 3.0

LabBindings = Callable[[], list[dict[str, Any]]]


class TopologyService:
    """The :class:`rabbit.topology.Topology` of one lab, and the feed that pushes its ``topology`` event: at once
    after the lab's own changes, and when a poll sees a change.

    ``lab_bindings()`` gives the bindings of the lab's own queues that are not in the registry (the watch area's
    taps): predictions count the copies they take.
    """

    def __init__(
        self,
        settings: Settings,
        events: EventSink,
        *,
        link: BrokerLink,
        management: ManagementClient | None,
        lab_bindings: LabBindings | None = None,
        interval: float = POLL_INTERVAL_S,
    ) -> None:
        self.settings = settings
        self.events = events
        self.link = link
        self.topology = Topology(
            link,
            management,
            vhost=vhost_of(settings.amqp_url),
            on_change=self.poke,
            timeout=settings.broker_timeout_s,
        )
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # each new snapshot, after its emit
        self.topology.lab_bindings = lab_bindings
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- declares, deletes, bindings
    def snapshot(self) -> dict[str, Any]:
        return self.topology.snapshot()

    def declare_exchange(
        self, name: str, type: str, *, durable: bool, auto_delete: bool, internal: bool, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """``type``: direct, fanout, topic or headers (named as in AMQP and the request body)."""
        name = validation.check_name(name, "exchange name")
        kind = validation.check_exchange_type(type)
        arguments = validation.check_exchange_arguments(arguments, frame_max=self.link.frame_max)
        return self.topology.declare_exchange(
            name, kind, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments
        )

    def delete_exchange(self, name: str) -> None:
        self.topology.delete_exchange(validation.check_name(name, "exchange name"))

    def declare_queue(
        self, name: str, *, durable: bool, auto_delete: bool, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """``name`` empty: the broker names the queue (the record has the name it gave)."""
        name = validation.check_name(name, "queue name", allow_empty=True)
        arguments = validation.check_queue_arguments(arguments, frame_max=self.link.frame_max)
        return self.topology.declare_queue(name, durable=durable, auto_delete=auto_delete, arguments=arguments)

    def delete_queue(self, name: str) -> None:
        self.topology.delete_queue(validation.check_name(name, "queue name"))

    def purge_queue(self, name: str) -> int:
        return self.topology.purge_queue(validation.check_name(name, "queue name"))

    def bind(
        self, source: str, destination: str, destination_type: str, routing_key: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        return self.topology.bind(
            **self._checked_binding(source, destination, destination_type, routing_key, arguments)
        )

    def unbind(
        self, source: str, destination: str, destination_type: str, routing_key: str, arguments: dict[str, Any]
    ) -> None:
        self.topology.unbind(**self._checked_binding(source, destination, destination_type, routing_key, arguments))

    def _checked_binding(
        self, source: str, destination: str, destination_type: str, routing_key: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "source": validation.check_name(source, "source exchange", allow_empty=True),
            # An empty queue name means "the channel's last declared queue" in AMQP: never on the lab's shared
            # channel. The default exchange as a destination is left to the broker (it refuses: ACCESS_REFUSED).
            "destination": validation.check_name(
                destination, "destination", allow_empty=destination_type == "exchange"
            ),
            "destination_type": validation.check_destination_type(destination_type),
            "routing_key": validation.check_routing_key(routing_key),
            "arguments": validation.check_table(arguments, "binding arguments", frame_max=self.link.frame_max),
        }

    # ----------------------------------------------------------------- routing
    def explain(self, exchange: str, routing_key: str, headers: dict[str, Any], *, all_misses: bool) -> dict[str, Any]:
        """Where a message would go and why (``POST /api/route``): the first ``route_misses_shown`` missed bindings
        explained (all with ``all_misses``) and ``route_near_misses`` near misses."""
        exchange = validation.check_name(exchange, "exchange", allow_empty=True)
        routing_key = validation.check_routing_key(routing_key)
        headers = validation.check_headers(headers)
        result = self.topology.route(
            exchange,
            routing_key,
            headers,
            max_age=1.0,
            explain_misses=None if all_misses else self.settings.route_misses_shown,
            near_misses=self.settings.route_near_misses,
        )
        return result.to_dict()

    def matrix(self, exchange: str, routing_keys: list[str], headers: list[dict[str, Any]] | None) -> dict[str, Any]:
        """Which binding takes which message: one row per routing key (with the headers of each, or one row per
        headers object alone), at most ``route_matrix_max_keys`` rows."""
        exchange = validation.check_name(exchange, "exchange")
        keys = [validation.check_routing_key(k) for k in routing_keys]
        rows_headers = [validation.check_headers(h) for h in headers] if headers is not None else None
        limit = self.settings.route_matrix_max_keys
        rows = max(len(keys), len(rows_headers or []))
        if rows_headers is not None and keys and len(rows_headers) != len(keys):
            raise InvalidInput(
                f"{len(keys)} routing keys but {len(rows_headers)} headers objects: give one headers object per key "
                "(or headers alone, one row each)"
            )
        if rows == 0:
            raise InvalidInput("give at least one routing key (or headers object): each is one row of the matrix")
        if rows > limit:
            raise InvalidInput(
                f"{rows} rows: a matrix takes at most {limit} routing keys (RABBITLENS_ROUTE_MATRIX_MAX_KEYS)"
            )
        keys = keys or [""] * rows
        matrix = self.topology.matrix(exchange, keys, rows_headers or [{}] * rows, max_age=1.0)
        if rows_headers is None:
            matrix.pop("headers")
        return matrix

    # ----------------------------------------------------------------- what the other areas use
    def route(self, exchange: str, routing_key: str, headers: dict[str, Any], *, max_age: float = 0.0) -> Any:
        """The routing engine's answer from the topology the lab knows (see :meth:`Topology.route`)."""
        return self.topology.route(exchange, routing_key, headers, max_age=max_age)

    def management_available(self) -> bool:
        return self.topology.management_available()

    # ----------------------------------------------------------------- the live feed
    def poke(self) -> None:
        """Something changed: send the new topology now (from the feed's own thread, not the request's)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="topology-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def current(self) -> dict[str, Any] | None:
        try:
            self._last = self.topology.snapshot(max_age=1.0)
        except LabError as exc:
            log.info("no topology to send: %s", exc.message)
        return self._last

    def state_events(self) -> list[tuple[str, Any]]:
        """What a new listener is sent to catch up: the topology (nothing while none can be read)."""
        snapshot = self.current()
        return [] if snapshot is None else [("topology", snapshot)]

    def _run(self) -> None:
        while not self._stop.is_set():
            poked = self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not poked and not self.link.connected:
                continue
            try:
                snapshot = self.topology.snapshot()
            except LabError as exc:
                log.debug("topology poll failed: %s", exc.message)
                continue
            except Exception:
                log.exception("topology poll failed")
                continue
            if poked or snapshot != self._last:
                self._last = snapshot
                self.events.emit("topology", snapshot)
                for listener in list(self.listeners):
                    listener(snapshot)
