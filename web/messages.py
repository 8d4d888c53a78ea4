"""A message's whole life and "explain, then verify": the wiring of :mod:`lab.messages` and
:mod:`lab.route_verification` to the live hub, and their routes.

Routes: ``GET /api/messages/<id>`` (a lab message's timeline), ``GET /api/route/verification`` (the engine's
predictions checked against the broker's routing of every traced publish). Socket.IO: ``route_disagreement``.

Both books are fed by a tee on the hub: every event the hub sends (``publish`` and ``broadcast``) is also shown
to the timeline, so no area has to know of it. The ``routed`` stages come from the routing engine, asked once
per (exchange, key, headers) a second (a burst of 10,000 copies is routed once); traced publishes are verified
by a worker of their own from a bounded queue, so a flood never slows the firehose (what does not fit is counted
in ``skipped``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Flask

from lab.messages import MessageTimeline
from lab.route_verification import RouteVerifier
from rabbit.errors import LabError
from web.api import api
from web.lab import Lab, current_lab

log = logging.getLogger(__name__)

bp = Blueprint("messages", __name__)
AREA = "messages"
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


class MessagesService:
    """The timeline and the route verifier of one lab, fed from the hub's events."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        if lab.settings.messages_kept < 1:
            raise ValueError(f"RABBITLENS_MESSAGES_KEPT must be at least 1 (it is {lab.settings.messages_kept})")
        self.timeline = MessageTimeline(lab.settings.messages_kept)
        self.verifier = RouteVerifier(self.predict)
        self.skipped = 0  # traced publishes not verified: the queue was full
        self._routes: dict[tuple[str, str, str], tuple[float, dict[str, Any] | None]] = {}
        self._pending: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._worker_started = False

    # ----------------------------------------------------------------- the tee
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
        topology = self.lab.services.get("topology")
        route = None
        if topology is not None:
            try:
                result = topology.route(exchange, routing_key, headers, max_age=PREDICTION_CACHE_S)
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
        topology = self.lab.services.get("topology")
        if topology is None:
            return None
        try:
            result = topology.route(exchange, routing_key, headers, max_age=0.0 if fresh else PREDICTION_CACHE_S)
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
            self.lab.hub.socketio.start_background_task(self._verify_loop)
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
                    self.lab.hub.publish("route_disagreement", disagreement)

    def verification(self) -> dict[str, Any]:
        watch = self.lab.services.get("watch")
        firehose = getattr(watch, "firehose", None)
        return {
            **self.verifier.summary(),
            "skipped": self.skipped,
            "pending": len(self._pending),
            "trace_enabled": bool(getattr(firehose, "enabled", False)),
        }

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


def tee(hub: Any, observe: Callable[[str, Any], None]) -> None:
    """Show ``observe`` every event ``hub`` publishes or broadcasts (after the hub has it)."""
    publish, broadcast = hub.publish, hub.broadcast

    def publish_and_observe(event: str, payload: Any) -> None:
        publish(event, payload)
        observe(event, payload)

    def broadcast_and_observe(event: str, payload: Any) -> None:
        broadcast(event, payload)
        observe(event, payload)

    hub.publish = publish_and_observe
    hub.broadcast = broadcast_and_observe


def service() -> MessagesService:
    return current_lab().services[AREA]


@api.route(
    bp,
    "/api/messages/<message_id>",
    "GET",
    summary="A lab message's whole life: each stage the lab observed, in order",
    responses={
        200: '{"id", "exchange", "routing_key", "properties", "stages": [{"stage", "at" (epoch ms), ...}]}',
        404: "No such lab message (or older than the last RABBITLENS_MESSAGES_KEPT)",
    },
)
def get_message(message_id: str) -> dict[str, Any]:
    found = service().timeline.get(message_id)
    if found is None:
        kept = current_lab().settings.messages_kept
        raise LabError(
            f"no lab message {message_id!r}: the lab keeps the timelines of its last {kept} messages "
            "(RABBITLENS_MESSAGES_KEPT); the id is the x-rabbitlens-id header of a message the lab published",
            code="NOT_FOUND",
        )
    return found


@api.route(
    bp,
    "/api/route/verification",
    "GET",
    summary="The engine's predictions checked against the broker's routing of every traced publish",
    responses={
        200: '{"checked", "agreed", "disagreed": [last 100 with both answers and the topology version], ...}',
    },
)
def get_verification() -> dict[str, Any]:
    return service().verification()


def init_app(app: Flask, lab: Lab) -> None:
    messages = MessagesService(lab)
    lab.services[AREA] = messages
    lab.shutdown_hooks.append(messages.stop)
    tee(lab.hub, messages.observe)
    app.register_blueprint(bp)
