"""The traffic area: publish with properties, run consumers, check each publish against the routing prediction.

Events (high rate): ``published``, ``returned``, ``delivery``, ``ack``, ``nack``, ``consumer``, ``prediction_check``;
(low rate) ``publish_progress`` during a burst and ``consumers`` (the whole list with exact counters, whenever a
counter changes, at most twice a second; :meth:`TrafficService.state_events` for a new listener).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.broker import BrokerService
from lab.events import EventSink, Spawn, start_thread
from lab.limits import Slots
from lab.settings import Settings
from rabbit import validation
from rabbit.consumer import Consumer
from rabbit.errors import InvalidInput, LabError
from rabbit.properties import MessageProperties, decode_body
from rabbit.publisher import Outcome, Publisher, PublishRequest

if TYPE_CHECKING:
    from lab.topology import TopologyService

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.5
PREDICTION_MAX_AGE_S = 1.0  # how old a topology snapshot the prediction may use


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


class TrafficService:
    """The publisher and the consumers of one lab, and the live counters they push to the browsers."""

    def __init__(
        self,
        settings: Settings,
        events: EventSink,
        *,
        broker: BrokerService,
        topology: TopologyService | None = None,
        spawn: Spawn = start_thread,
    ) -> None:
        """``topology`` predicts where each publish goes (None: no predictions); ``broker`` shows the publisher's
        connection.blocked in the lab's broker status."""
        self.settings = settings
        self.events = events
        self.broker = broker
        self.topology = topology
        self.spawn = spawn
        self.max_body = settings.publish_max_body
        self.max_count = settings.publish_max_count
        self.max_burst_bytes = settings.publish_max_burst_bytes
        self.publisher = Publisher(
            settings.amqp_url,
            events.stream,
            timeout=settings.broker_timeout_s,
            on_status=self._on_publisher_status,
        )
        self._publisher_blocked: str | None = None
        broker.add_blocked_source(lambda: self.publisher.blocked)
        self.consumers: dict[str, Consumer] = {}
        self._lock = threading.Lock()
        self.consumer_slots = Slots(
            settings.max_consumers,
            "at most {limit} running consumers (RABBITLENS_MAX_CONSUMERS); stop one first",
            code="INVALID",
        )
        self.burst_slots = Slots(
            settings.publish_max_bursts,
            "at most {limit} publish bursts at once (RABBITLENS_PUBLISH_MAX_BURSTS): wait for one to end",
        )
        self._stopping = threading.Event()
        self._last_stats: Any = None
        self._predictions: OrderedDict[str, Prediction] = OrderedDict()
        self.predictions_kept = settings.predictions_kept
        self._predictions_lock = threading.Lock()

    def start(self) -> None:
        self.publisher.start()
        self.spawn(self._push_stats)

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
            self.broker.announce()

    # ------------------------------------------------------------------ publish
    def predict(self, exchange: str, routing_key: str, headers: dict[str, Any] | None) -> list[str] | None:
        """The queues the routing engine expects, from the topology the lab knows; None when it cannot say."""
        return self.prediction(exchange, routing_key, headers).queues

    def prediction(
        self, exchange: str, routing_key: str, headers: dict[str, Any] | None, *, max_age: float = PREDICTION_MAX_AGE_S
    ) -> Prediction:
        """The engine's expectation with what qualifies it (the lab's taps, unknown bindings, doubts)."""
        prediction = Prediction(exchange, routing_key, dict(headers or {}), None)
        service = self.topology
        if service is None:
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
        self.events.stream(name, payload)
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
            self.events.stream("prediction_check", {"id": payload["id"], **result})

        self.spawn(check)

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

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: str,
        *,
        body_encoding: str = "utf-8",
        properties: MessageProperties | None = None,
        mandatory: bool = False,
        count: int = 1,
    ) -> dict[str, Any]:
        """Publish ``count`` confirmed copies (a burst when more than one) with the prediction each is checked
        against; the answer says what the broker did."""
        validation.check_name(exchange, "exchange", allow_empty=True)
        validation.check_routing_key(routing_key, "routing_key")
        if count > self.max_count:
            raise InvalidInput(f"count: at most {self.max_count} messages in one burst")
        data = decode_body(body, body_encoding, self.max_body)
        if count > 1 and count * len(data) > self.max_burst_bytes:
            raise InvalidInput(
                f"count: {count} copies of {len(data)} bytes is over the burst limit of "
                f"{self.max_burst_bytes} bytes (RABBITLENS_PUBLISH_MAX_BURST_BYTES); send fewer or smaller messages"
            )
        props = properties if properties is not None else MessageProperties()
        # Headers too big for one frame would make the broker close the publisher's connection (501 FRAME_ERROR).
        validation.check_table_size(props.headers, "headers", self.publisher.link.frame_max)
        prediction = self.prediction(exchange, routing_key, props.headers)
        predicted = prediction.queues
        request = PublishRequest(exchange, routing_key, data, props, mandatory, predicted)
        request.prediction_notes = prediction.notes
        request.check = lambda outcome: self._check_publish(prediction, outcome)
        if prediction.queues is not None:
            request.on_id = lambda message_id: self._remember(message_id, prediction)
        if count == 1:
            outcome = self.publisher.publish(request)
            return {
                "id": outcome.id,
                "confirmed": outcome.confirmed,
                "routed": outcome.routed,
                "returned": outcome.returned,
                "dropped": outcome.dropped(mandatory),
                "predicted": predicted,
                "prediction_notes": prediction.notes,
                "prediction_check": outcome.prediction_check,
            }
        with self.burst_slots.hold():
            result = self.publisher.burst(request, count, on_progress=lambda p: self.events.emit("publish_progress", p))
        return {**result, "predicted": predicted, "prediction_notes": prediction.notes}

    # ------------------------------------------------------------------ consumers
    def add_consumer(
        self,
        queue: str,
        *,
        ack: str = "manual",
        prefetch: int = 0,
        work_ms: int = 0,
        on_message: str = "ack",
    ) -> Consumer:
        """Start a consumer with the tutorials' knobs on its own connection (the limit counts those starting)."""
        validation.check_name(queue, "queue")
        with self.consumer_slots.reserve(lambda: sum(not c.finished for c in list(self.consumers.values()))):
            consumer = Consumer(
                self.settings.amqp_url,
                queue,
                self._consumer_event,
                ack=ack,
                prefetch=prefetch,
                work_ms=work_ms,
                on_message=on_message,
            )
            with self._lock:
                self.consumers[consumer.id] = consumer
        try:
            consumer.start(timeout=self.settings.broker_timeout_s)
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
        self.events.emit("consumers", listing)

    def _push_stats(self) -> None:
        while not self._stopping.wait(STATS_INTERVAL_S):
            try:
                listing = self.listing()
                stats = [{k: v for k, v in c.items() if k != "created"} for c in listing]
                if stats != self._last_stats:
                    self._last_stats = stats
                    self.events.emit("consumers", listing)
            except Exception:
                log.exception("consumer stats push failed")

    def state_events(self) -> list[tuple[str, Any]]:
        """What a new listener is sent to catch up: the consumer list."""
        return [("consumers", self.listing())]
