"""A message's whole life and "explain, then verify" for one lab: :class:`MessageService`.

It is fed every event the lab's services report (``create_app`` adds :meth:`MessageService.observe` to the lab's
``ObservedSink``), so no area has to know of it. The ``routed`` stages come from the routing engine, asked once per
(exchange, key, headers) a second (a burst of 10,000 copies is routed once); traced publishes are verified by a
worker of their own from a bounded queue, so a flood never slows the firehose (what does not fit is counted in
``skipped``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from lab.events import EventSink, Spawn
from lab.messages import MessageTimeline
from lab.route_verification import RouteVerifier
from lab.settings import Settings
from lab.topology import TopologyService
from lab.watch import WatchService
from rabbit.errors import LabError

log = logging.getLogger(__name__)

PREDICTION_CACHE_S = 1.0
PREDICTION_CACHE_SIZE = 256
VERIFY_QUEUE = 10_000
VERIFIED_FIELDS = (
    "kind",
    "exchange",
    "routing_key",
    "routed_queues",
    "headers",
    "properties",
    "time",
    "connection",
    "user",
)


class MessageService:
    """The timeline and the route verifier of one lab, fed with every event the lab's services report."""

    def __init__(
        self, settings: Settings, events: EventSink, *, topology: TopologyService, watch: WatchService, spawn: Spawn
    ) -> None:
        if settings.messages_kept < 1:
            raise ValueError(f"RABBITLENS_MESSAGES_KEPT must be at least 1 (it is {settings.messages_kept})")
        self.settings = settings
        self.events = events
        self.topology = topology
        self.watch = watch
        self.spawn = spawn
        self.timeline = MessageTimeline(settings.messages_kept)
        self.verifier = RouteVerifier(self.predict)
        self.skipped = 0  # traced publishes not verified: the queue was full
        self._routes: dict[tuple[str, str, str], tuple[float, dict[str, Any] | None]] = {}
        self._pending: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._worker_started = False

    # ----------------------------------------------------------------- what it observes
    def observe(self, name: str, payload: Any) -> None:
        """Every event the hub sends: to the timeline, a prediction for each publish, traced publishes to verify."""
        try:
            self.timeline.observe(name, payload)
            if name == "published" and isinstance(payload, dict) and payload.get("id"):
                self._explain(payload)
            elif name == "trace" and isinstance(payload, dict) and payload.get("kind") == "publish":
                self._queue_check(payload)
        except Exception:
            log.exception("the message timeline failed on %s", name)

    def _explain(self, published: Mapping[str, Any]) -> None:
        headers = (published.get("properties") or {}).get("headers") or {}
        route = self._route(published.get("exchange") or "", published.get("routing_key") or "", headers)
        if route is not None and route["matches"]:
            self.timeline.observe("prediction", {"id": published["id"], **route})

    def _route(self, exchange: str, routing_key: str, headers: Mapping[str, Any]) -> dict[str, Any] | None:
        """The engine's matches with their explanations, kept a second per message shape (a burst shares one)."""
        key = (exchange, routing_key, json.dumps(headers, sort_keys=True, default=str) if headers else "")
        now = time.monotonic()
        known = self._routes.get(key)
        if known is not None and now - known[0] < PREDICTION_CACHE_S:
            return known[1]
        route = None
        try:
            result = self.topology.route(exchange, routing_key, dict(headers), max_age=PREDICTION_CACHE_S)
            route = {
                "matches": [m.to_dict() for m in result.matches],
                "topology_version": result.topology_version,
            }
        except LabError as exc:
            log.debug("no route explanation for %r/%r: %s", exchange, routing_key, exc.message)
        if len(self._routes) >= PREDICTION_CACHE_SIZE:
            self._routes.clear()
        self._routes[key] = (now, route)
        return route

    # ----------------------------------------------------------------- explain, then verify
    def predict(
        self, exchange: str, routing_key: str, headers: Mapping[str, Any], *, fresh: bool = False
    ) -> dict[str, Any] | None:
        """The engine's queues for a traced publish (``fresh``: from a topology read now), None if it cannot say."""
        try:
            max_age = 0.0 if fresh else PREDICTION_CACHE_S
            result = self.topology.route(exchange, routing_key, dict(headers), max_age=max_age)
        except LabError as exc:
            log.debug("no prediction for traced %r/%r: %s", exchange, routing_key, exc.message)
            return None
        return {
            "queues": list(result.queues),
            "lab_queues": list(result.lab_queues),
            "routed": result.routed,
            "topology_version": result.topology_version,
        }

    def _queue_check(self, event: Mapping[str, Any]) -> None:
        if len(self._pending) >= VERIFY_QUEUE:
            self.skipped += 1
            return
        self._pending.append({k: event.get(k) for k in VERIFIED_FIELDS})  # not the body: bounded memory
        if not self._worker_started and not self._stopping:
            self._worker_started = True
            self.spawn(self._verify_loop)
        self._wake.set()

    def _verify_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(1.0)
            self._wake.clear()
            while self._pending and not self._stopping:
                event = self._pending.popleft()
                try:
                    disagreement = self.verifier.check(event)
                except Exception:
                    log.exception("route verification failed")
                    continue
                if disagreement is not None:
                    log.info("route disagreement: %s", json.dumps(disagreement, default=str)[:2000])
                    self.timeline.observe("route_disagreement", disagreement)
                    self.events.stream("route_disagreement", disagreement)

    def verification(self) -> dict[str, Any]:
        firehose = self.watch.firehose
        return {
            **self.verifier.summary(),
            "skipped": self.skipped,
            "pending": len(self._pending),
            "trace_enabled": bool(getattr(firehose, "enabled", False)),
        }

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
