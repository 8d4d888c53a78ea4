"""The topology area: the lab's topology operations on the main link, the routing predictions, and the live feed.

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
from rabbit.connection import BrokerLink
from rabbit.errors import LabError
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
        self.events = events
        self.link = link
        self.topology = Topology(
            link,
            management,
            vhost=vhost_of(settings.amqp_url),
            on_change=self.poke,
            timeout=settings.broker_timeout_s,
        )
        self.topology.lab_bindings = lab_bindings
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None

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
