"""The traffic area: publish with properties, run consumers, and stream what happens to the browsers.

HTTP: ``POST /api/publish``, ``POST/GET /api/consumers``, ``GET/DELETE /api/consumers/<id>``.
Socket.IO (high rate, maybe inside ``batch``): ``published``, ``returned``, ``delivery``, ``ack``, ``nack``,
``consumer``; (low rate) ``publish_progress`` during a burst and ``consumers`` (the whole list with exact
counters, on connect and whenever a counter changes, at most twice a second).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Literal

from flask import Blueprint, Flask
from pydantic import Field, StrictBool

from rabbit.consumer import PREFETCH_MAX, WORK_MS_MAX, Consumer
from rabbit.errors import InvalidInput, LabError
from rabbit.properties import MessageProperties, decode_body
from rabbit.publisher import Publisher, PublishRequest, check_routing_key_bytes
from rabbit.validation import check_table_size
from web.api import ApiModel, api
from web.lab import Lab, current_lab

log = logging.getLogger(__name__)

bp = Blueprint("traffic", __name__)

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_COUNT = 10_000
DEFAULT_MAX_BURST_BYTES = 64 * 1024 * 1024  # count x body size of one burst: a load demo, not a broker filler
MAX_CONSUMERS = 50
STATS_INTERVAL_S = 0.5
PREDICTION_MAX_AGE_S = 1.0  # how old a topology snapshot the prediction may use


class PublishIn(ApiModel):
    exchange: str = Field("", description='exchange name ("" is the default exchange)')
    routing_key: str = ""
    body: str = ""
    body_encoding: Literal["utf-8", "base64"] = "utf-8"
    properties: MessageProperties = Field(default_factory=MessageProperties)
    mandatory: StrictBool = Field(False, description="ask the broker to return the message if no queue takes it")
    count: int = Field(1, ge=1, description="publish this many copies (a burst), up to the configured limit")


class ConsumerIn(ApiModel):
    queue: str = Field(..., min_length=1)
    ack: Literal["auto", "manual"] = "manual"
    prefetch: int = Field(0, ge=0, le=PREFETCH_MAX, description="0 = no limit (round-robin)")
    work_ms: int = Field(0, ge=0, le=WORK_MS_MAX, description="time spent on each message before acking")
    on_message: Literal["ack", "reject", "nack_requeue", "crash"] = "ack"


def _limit(lab: Lab, key: str, default: int) -> int:
    """A limit from the settings' ``extra`` or ``RABBITLENS_<KEY>``, else ``default``."""
    value = lab.settings.extra.get(key) or os.environ.get(f"RABBITLENS_{key.upper()}")
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


class TrafficService:
    """The publisher and the consumers of one lab, and the live counters they push to the browsers."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.max_body = _limit(lab, "publish_max_body", DEFAULT_MAX_BODY)
        self.max_count = _limit(lab, "publish_max_count", DEFAULT_MAX_COUNT)
        self.max_burst_bytes = _limit(lab, "publish_max_burst_bytes", DEFAULT_MAX_BURST_BYTES)
        self.publisher = Publisher(lab.settings.amqp_url, lab.hub.sink, timeout=lab.settings.broker_timeout_s)
        self.consumers: dict[str, Consumer] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._last_stats: Any = None

    def start(self) -> None:
        self.publisher.start()
        self.lab.hub.socketio.start_background_task(self._push_stats)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            consumers = list(self.consumers.values())
        for consumer in consumers:
            consumer.stop()
        self.publisher.stop()

    # ------------------------------------------------------------------ publish
    def predict(self, exchange: str, routing_key: str, headers: dict[str, Any] | None) -> list[str] | None:
        """The queues the routing engine expects, from the topology the lab knows; None when it cannot say."""
        service = self.lab.services.get("topology")
        if service is None or not hasattr(service, "route"):
            return None
        try:
            result = service.route(exchange, routing_key, headers or {}, max_age=PREDICTION_MAX_AGE_S)
            return sorted(result.to_dict()["queues"])
        except LabError as exc:  # an exchange the lab does not know, the broker away...
            log.info("no prediction for %r/%r: %s", exchange, routing_key, exc.message)
            return None
        except Exception:
            log.exception("routing prediction failed")
            return None

    def publish(self, body: PublishIn) -> dict[str, Any]:
        check_name(body.exchange, "exchange", allow_empty=True)
        check_routing_key(body.routing_key)
        if body.count > self.max_count:
            raise InvalidInput(f"count: at most {self.max_count} messages in one burst")
        data = decode_body(body.body, body.body_encoding, self.max_body)
        if body.count > 1 and body.count * len(data) > self.max_burst_bytes:
            raise InvalidInput(
                f"count: {body.count} copies of {len(data)} bytes is over the burst limit of "
                f"{self.max_burst_bytes} bytes (RABBITLENS_PUBLISH_MAX_BURST_BYTES); send fewer or smaller messages"
            )
        props = body.properties
        # Headers too big for one frame would make the broker close the publisher's connection (501 FRAME_ERROR).
        check_table_size(props.headers, "headers", self.publisher.link.frame_max)
        predicted = self.predict(body.exchange, body.routing_key, props.headers)
        request = PublishRequest(body.exchange, body.routing_key, data, props, body.mandatory, predicted)
        if body.count == 1:
            outcome = self.publisher.publish(request)
            return {
                "id": outcome.id,
                "confirmed": outcome.confirmed,
                "routed": outcome.routed,
                "returned": outcome.returned,
                "dropped": outcome.dropped(body.mandatory),
                "predicted": predicted,
            }
        result = self.publisher.burst(
            request, body.count, on_progress=lambda p: self.lab.hub.broadcast("publish_progress", p)
        )
        return {**result, "predicted": predicted}

    # ------------------------------------------------------------------ consumers
    def add_consumer(self, body: ConsumerIn) -> Consumer:
        check_name(body.queue, "queue")
        with self._lock:
            if sum(not c.finished for c in self.consumers.values()) >= MAX_CONSUMERS:
                raise InvalidInput(f"at most {MAX_CONSUMERS} running consumers; stop one first")
        consumer = Consumer(
            self.lab.settings.amqp_url,
            body.queue,
            self.lab.hub.sink,
            ack=body.ack,
            prefetch=body.prefetch,
            work_ms=body.work_ms,
            on_message=body.on_message,
        )
        with self._lock:
            self.consumers[consumer.id] = consumer
        try:
            consumer.start(timeout=self.lab.settings.broker_timeout_s)
        except Exception:
            with self._lock:
                self.consumers.pop(consumer.id, None)
            raise
        return consumer

    def get(self, consumer_id: str) -> Consumer:
        with self._lock:
            consumer = self.consumers.get(consumer_id)
        if consumer is None:
            raise LabError(f"no consumer {consumer_id!r}", code="NOT_FOUND")
        return consumer

    def remove_consumer(self, consumer_id: str) -> dict[str, Any]:
        consumer = self.get(consumer_id)
        consumer.stop()
        with self._lock:
            self.consumers.pop(consumer_id, None)
        self._broadcast_list()
        return consumer.snapshot()

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            consumers = list(self.consumers.values())
        return [c.snapshot() for c in sorted(consumers, key=lambda c: c.created)]

    # ------------------------------------------------------------------ live counters
    def _broadcast_list(self) -> None:
        listing = self.listing()
        self._last_stats = [{k: v for k, v in c.items() if k != "created"} for c in listing]
        self.lab.hub.broadcast("consumers", listing)

    def _push_stats(self) -> None:
        sleep = self.lab.hub.socketio.sleep
        while not self._stopping.is_set():
            sleep(STATS_INTERVAL_S)
            try:
                listing = self.listing()
                stats = [{k: v for k, v in c.items() if k != "created"} for c in listing]
                if stats != self._last_stats:
                    self._last_stats = stats
                    self.lab.hub.broadcast("consumers", listing)
            except Exception:
                log.exception("consumer stats push failed")

    def send_state(self, sid: str) -> None:
        self.lab.hub.send_to(sid, "consumers", self.listing())


def check_name(value: str, what: str, *, allow_empty: bool = False) -> str:
    """Names: the shared checks of ``rabbit.validation`` (at most 255 bytes of UTF-8)."""
    from rabbit.validation import check_name as shared_check_name

    return shared_check_name(value, what, allow_empty=allow_empty)


def check_routing_key(value: str) -> str:
    from rabbit.validation import check_routing_key as shared_check_routing_key

    check_routing_key_bytes(value)
    return shared_check_routing_key(value, "routing_key")


def service() -> TrafficService:
    return current_lab().services["traffic"]


# ---------------------------------------------------------------------- routes
@api.route(
    bp,
    "/api/publish",
    "POST",
    summary="Publish a message (or a burst) with properties, confirmed by the broker",
    body=PublishIn,
    responses={200: "Confirmed (see routed / returned)", 404: "No such exchange"},
)
def publish(body: PublishIn) -> dict[str, Any]:
    return service().publish(body)


@api.route(
    bp,
    "/api/consumers",
    "POST",
    summary="Start a consumer on a queue (its own connection)",
    body=ConsumerIn,
    responses={201: "Consuming", 404: "No such queue", 409: "Queue locked (exclusive to another connection)"},
)
def add_consumer(body: ConsumerIn) -> tuple[dict[str, Any], int]:
    consumer = service().add_consumer(body)
    return {"id": consumer.id, **consumer.snapshot()}, 201


@api.route(bp, "/api/consumers", "GET", summary="The consumers with their knobs, state and exact counters")
def list_consumers() -> Any:
    from flask import jsonify

    return jsonify(service().listing())


@api.route(bp, "/api/consumers/<consumer_id>", "GET", summary="One consumer", responses={404: "No such consumer"})
def get_consumer(consumer_id: str) -> dict[str, Any]:
    return service().get(consumer_id).snapshot()


@api.route(
    bp,
    "/api/consumers/<consumer_id>",
    "DELETE",
    summary="Stop a consumer (unacked messages go back to the queue)",
    responses={200: "Stopped (its last counters)", 404: "No such consumer"},
)
def delete_consumer(consumer_id: str) -> dict[str, Any]:
    return service().remove_consumer(consumer_id)


def init_app(app: Flask, lab: Lab) -> None:
    app.register_blueprint(bp)
    traffic = TrafficService(lab)
    lab.services["traffic"] = traffic
    lab.shutdown_hooks.append(traffic.stop)
    lab.hub.connect_hooks.append(traffic.send_state)
    traffic.start()
