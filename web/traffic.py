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
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Blueprint, Flask
from pydantic import Field, StrictBool

from rabbit.consumer import PREFETCH_MAX, WORK_MS_MAX, Consumer
from rabbit.errors import InvalidInput, LabError
from rabbit.properties import MessageProperties, decode_body
from rabbit.publisher import Outcome, Publisher, PublishRequest, check_routing_key_bytes
from rabbit.validation import check_table_size
from web.api import ApiModel, api
from web.lab import Lab, current_lab
from web.limits import Slots

log = logging.getLogger(__name__)

bp = Blueprint("traffic", __name__)

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_COUNT = 10_000
DEFAULT_MAX_BURST_BYTES = 64 * 1024 * 1024  # count x body size of one burst: a load demo, not a broker filler
STATS_INTERVAL_S = 0.5
PREDICTION_MAX_AGE_S = 1.0  # how old a topology snapshot the prediction may use
PREDICTIONS_KEPT = 10_000  # lab ids whose prediction a delivery can still be checked against


@dataclass
class Prediction:
    """What the routing engine expected for one publish request (shared by every copy of a burst)."""

    exchange: str
    routing_key: str
    headers: dict[str, Any]
    queues: list[str] | None  # None: the lab cannot tell
    notes: list[str] = field(default_factory=list)
    version: str | None = None
    source: str | None = None
    checks: dict[Any, dict[str, Any]] = field(default_factory=dict)  # one re-read per stage (and queue)


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
        self.publisher = Publisher(
            lab.settings.amqp_url,
            lab.hub.sink,
            timeout=lab.settings.broker_timeout_s,
            on_status=self._on_publisher_status,
        )
        self._publisher_blocked: str | None = None
        lab.blocked_sources.append(lambda: self.publisher.blocked)
        self.consumers: dict[str, Consumer] = {}
        self._lock = threading.Lock()
        self.consumer_slots = Slots(
            lab.settings.max_consumers,
            "at most {limit} running consumers (RABBITLENS_MAX_CONSUMERS); stop one first",
            code="INVALID",
        )
        self.burst_slots = Slots(
            lab.settings.publish_max_bursts,
            "at most {limit} publish bursts at once (RABBITLENS_PUBLISH_MAX_BURSTS): wait for one to end",
        )
        self._stopping = threading.Event()
        self._last_stats: Any = None
        self._predictions: OrderedDict[str, Prediction] = OrderedDict()
        self.predictions_kept = _limit(lab, "predictions_kept", PREDICTIONS_KEPT)
        self._predictions_lock = threading.Lock()

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

    def _on_publisher_status(self, status: dict[str, Any]) -> None:
        """connection.blocked / unblocked on the publisher's link: tell the browsers (health and the status pill
        say why publishes are refused); its other changes are the main link's to report."""
        blocked = status.get("blocked")
        if blocked != self._publisher_blocked:
            self._publisher_blocked = blocked
            self.lab.broadcast_broker_status()

    # ------------------------------------------------------------------ publish
    def predict(self, exchange: str, routing_key: str, headers: dict[str, Any] | None) -> list[str] | None:
        """The queues the routing engine expects, from the topology the lab knows; None when it cannot say."""
        return self.prediction(exchange, routing_key, headers).queues

    def prediction(
        self, exchange: str, routing_key: str, headers: dict[str, Any] | None, *, max_age: float = PREDICTION_MAX_AGE_S
    ) -> Prediction:
        """The engine's expectation with what qualifies it (the lab's taps, unknown bindings, doubts)."""
        prediction = Prediction(exchange, routing_key, dict(headers or {}), None)
        service = self.lab.services.get("topology")
        if service is None or not hasattr(service, "route"):
            return prediction
        try:
            result = service.route(exchange, routing_key, headers or {}, max_age=max_age)
        except LabError as exc:  # an exchange the lab does not know, the broker away...
            log.info("no prediction for %r/%r: %s", exchange, routing_key, exc.message)
            return prediction
        except Exception:
            log.exception("routing prediction failed")
            return prediction
        prediction.queues = None if result.routed is None else sorted(result.queues)
        prediction.notes = list(result.caveats)
        prediction.version = result.topology_version
        prediction.source = "management" if service.management_available() else "lab"
        return prediction

    # ------------------------------------------------------------------ prediction vs broker
    def _remember(self, message_id: str, prediction: Prediction) -> None:
        with self._predictions_lock:
            self._predictions[message_id] = prediction
            while len(self._predictions) > self.predictions_kept:
                self._predictions.popitem(last=False)

    def _check_publish(self, prediction: Prediction, outcome: Outcome) -> dict[str, Any] | None:
        """At the confirm: did the broker route it where the prediction said it would (somewhere or nowhere)?"""
        if prediction.queues is None or not outcome.confirmed:
            return None
        if bool(prediction.queues) == outcome.routed:
            return None
        observed = "the broker routed it" if outcome.routed else "the broker routed it to no queue"
        return self._recheck(prediction, ("publish",), observed, lambda again: bool(again) == outcome.routed)

    def _consumer_event(self, name: str, payload: dict[str, Any]) -> None:
        """A consumer's events go to the browsers; a delivery from a queue the prediction left out is re-checked."""
        self.lab.hub.sink(name, payload)
        if name != "delivery" or not payload.get("id"):
            return
        with self._predictions_lock:  # a burst's copies are "<burst id>-<n>"
            prediction = self._predictions.get(payload["id"]) or self._predictions.get(payload["id"].rsplit("-", 1)[0])
        queue = payload.get("queue")
        if prediction is None or prediction.queues is None or queue in prediction.queues:
            return
        if ("delivery", queue) in prediction.checks:
            return
        prediction.checks[("delivery", queue)] = {}  # once per request and queue, even for a burst

        def check() -> None:
            observed = f"the broker delivered it to '{queue}'"
            result = self._recheck(prediction, ("delivery", queue), observed, lambda again: queue in again)
            self.lab.hub.publish("prediction_check", {"id": payload["id"], **result})

        self.lab.hub.socketio.start_background_task(check)

    def _recheck(self, prediction: Prediction, stage: tuple, observed: str, agrees: Any) -> dict[str, Any]:
        """Re-read the topology now and say whether it changed since the prediction or the prediction was wrong."""
        done = prediction.checks.get(stage)
        if done:
            return done
        fresh = self.prediction(prediction.exchange, prediction.routing_key, prediction.headers, max_age=0.0)
        again = fresh.queues
        changed = fresh.version != prediction.version or again != prediction.queues
        shown = "nothing known" if again is None else ", ".join(again) or "no queue"
        if again is not None and agrees(again) and changed:
            verdict = "topology_changed"
            note = f"the topology changed after the prediction: read again now, it predicts {shown}, as {observed}"
        elif again is None:
            verdict = "topology_changed" if changed else "unknown"
            note = f"{'the topology changed; ' * changed}read again now the lab cannot tell where it goes "
            note += f"({'; '.join(fresh.notes)}); {observed}"
        else:
            verdict = "prediction_wrong"
            state = "changed" if changed else "unchanged"
            note = (
                f"the prediction was wrong: read again now, the topology ({state}) still predicts {shown}, "
                f"but {observed}"
            )
            if fresh.source != "management":
                note += "; without the management API the lab does not see the bindings other applications made"
        result = {
            "stage": stage[0],
            "verdict": verdict,
            "topology_changed": changed,
            "predicted": prediction.queues,
            "repredicted": again,
            "observed": observed,
            "note": note,
            "topology_version": {"predicted": prediction.version, "now": fresh.version},
        }
        prediction.checks[stage] = result
        return result

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
        prediction = self.prediction(body.exchange, body.routing_key, props.headers)
        predicted = prediction.queues
        request = PublishRequest(body.exchange, body.routing_key, data, props, body.mandatory, predicted)
        request.prediction_notes = prediction.notes
        request.check = lambda outcome: self._check_publish(prediction, outcome)
        if prediction.queues is not None:
            request.on_id = lambda message_id: self._remember(message_id, prediction)
        if body.count == 1:
            outcome = self.publisher.publish(request)
            return {
                "id": outcome.id,
                "confirmed": outcome.confirmed,
                "routed": outcome.routed,
                "returned": outcome.returned,
                "dropped": outcome.dropped(body.mandatory),
                "predicted": predicted,
                "prediction_notes": prediction.notes,
                "prediction_check": outcome.prediction_check,
            }
        with self.burst_slots.hold():
            result = self.publisher.burst(
                request, body.count, on_progress=lambda p: self.lab.hub.broadcast("publish_progress", p)
            )
        return {**result, "predicted": predicted, "prediction_notes": prediction.notes}

    # ------------------------------------------------------------------ consumers
    def add_consumer(self, body: ConsumerIn) -> Consumer:
        check_name(body.queue, "queue")
        with self.consumer_slots.reserve(lambda: sum(not c.finished for c in list(self.consumers.values()))):
            consumer = Consumer(
                self.lab.settings.amqp_url,
                body.queue,
                self._consumer_event,
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
    responses={
        200: "Confirmed (see routed / returned)",
        404: "No such exchange",
        503: "The broker is unreachable, or blocks publishers (a memory or disk alarm: BROKER_BLOCKED)",
    },
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
