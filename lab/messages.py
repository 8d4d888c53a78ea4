"""A message's whole life: the timeline of each lab message, built from the events the live hub sends.

:class:`MessageTimeline` is pure bookkeeping (no I/O): it is fed every event the lab emits (``published``,
``returned``, ``delivery``, ``ack``, ``nack``, ``tap``, ``taps``, ``trace``) plus ``prediction`` (the routing
engine's matches for a publish, which the caller computes) and keeps, per lab id (the ``x-rabbitlens-id``
header), the stages it could observe. Nothing is invented: ``queued`` comes only from the broker's own routing
decision (the firehose's ``routed_queues``) or from a delivery or tap out of that queue; ``dead_lettered`` and
``expired`` from the ``x-death`` header of the dead-lettered copy; ``routed`` from the prediction (marked so).

Bounded: at most ``kept`` messages (the oldest go first) and ``max_stages`` stages each (a message requeued in a
loop keeps its first stages and its latest ones; ``stages_dropped`` counts the rest).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from lab.message_record import (
    BEFORE_DEATH,
    DEATH_REASONS,
    ID_HEADER,
    KEEP_FIRST,
    MAX_STAGES,
    MESSAGES_KEPT,
    RANK,
    STAGES,
    _death_time_ms,
    _headers_of,
    _ms,
    _Record,
    _text,
    lab_id_of,
)

__all__ = [
    "BEFORE_DEATH",
    "DEATH_REASONS",
    "ID_HEADER",
    "KEEP_FIRST",
    "MAX_STAGES",
    "MESSAGES_KEPT",
    "RANK",
    "STAGES",
    "MessageTimeline",
    "lab_id_of",
]


class MessageTimeline:
    """The stages of the last ``kept`` lab messages, fed with :meth:`observe` (thread-safe, never does I/O)."""

    def __init__(
        self,
        kept: int = MESSAGES_KEPT,
        *,
        max_stages: int = MAX_STAGES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if kept < 1 or max_stages <= KEEP_FIRST:
            raise ValueError(f"kept must be at least 1 and max_stages more than {KEEP_FIRST}")
        self.kept = kept
        self.max_stages = max_stages
        self.clock = clock
        self._messages: OrderedDict[str, _Record] = OrderedDict()
        self._tap_queues: dict[str, str] = {}  # tap id -> its queue (from the ``taps`` list)
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Mapping[str, Any]], None]] = {
            "published": self._published,
            "prediction": self._prediction,
            "returned": self._returned,
            "delivery": self._delivery,
            "ack": self._ack,
            "nack": self._nack,
            "tap": self._tap,
            "taps": self._taps,
            "trace": self._trace,
            "route_disagreement": self._route_disagreement,
        }

    # ----------------------------------------------------------------- public
    def observe(self, name: str, payload: Any) -> None:
        """One event as the hub sends it (a ``batch`` is unpacked by the caller); others are ignored."""
        handler = self._handlers.get(name)
        if handler is None or not isinstance(payload, dict | list):
            return
        with self._lock:
            handler(payload)  # type: ignore[arg-type]

    def get(self, message_id: str) -> dict[str, Any] | None:
        """``{"id", "exchange", "routing_key", "properties", "stages": [...], "stages_dropped"}`` or None."""
        with self._lock:
            record = self._messages.get(message_id)
            if record is None:
                return None
            stages = sorted(record.stages, key=lambda s: (s["at"], RANK.get(s["stage"], 3), s["_seq"]))
            return {
                "id": record.id,
                "exchange": record.exchange,
                "routing_key": record.routing_key,
                "properties": record.properties,
                "stages": [{k: v for k, v in s.items() if k != "_seq"} for s in stages],
                "stages_dropped": record.dropped,
                "route_disagreement": record.disagreement,
            }

    def __len__(self) -> int:
        return len(self._messages)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._messages

    # ----------------------------------------------------------------- bookkeeping
    def _record(self, message_id: str, *, create: bool = True) -> _Record | None:
        record = self._messages.get(message_id)
        if record is None and create:
            record = self._messages[message_id] = _Record(message_id)
            while len(self._messages) > self.kept:
                self._messages.popitem(last=False)
        return record

    def _add(self, record: _Record, stage: str, at: int | None, **fields: Any) -> dict[str, Any]:
        record.seq += 1
        entry = {"stage": stage, "at": at if at is not None else self._now(), **fields, "_seq": record.seq}
        record.stages.append(entry)
        if len(record.stages) > self.max_stages:
            del record.stages[KEEP_FIRST]  # the oldest of the later stages
            record.dropped += 1
        return entry

    def _now(self) -> int:
        return round(self.clock() * 1000)

    def _describe(self, record: _Record, payload: Mapping[str, Any]) -> None:
        if record.described:
            return
        record.described = True
        if record.exchange is None and isinstance(payload.get("exchange"), str):
            record.exchange = payload["exchange"]
        if record.routing_key is None and isinstance(payload.get("routing_key"), str):
            record.routing_key = payload["routing_key"]
        if not record.properties and isinstance(payload.get("properties"), dict):
            props = dict(payload["properties"])
            headers = props.get("headers")
            if isinstance(headers, dict):
                headers = {k: v for k, v in headers.items() if not str(k).startswith("x-rabbitlens-")}
                if headers:
                    props["headers"] = headers
                else:
                    props.pop("headers")
            record.properties = props

    def _queued(self, record: _Record, queue: Any, at: int | None, **fields: Any) -> None:
        if not isinstance(queue, str) or (queue, record.gen) in record.queued:
            return
        record.queued.add((queue, record.gen))
        tap = next((t for t, q in self._tap_queues.items() if q == queue), None)
        if tap is not None:
            fields = {**fields, "lab": "tap", "tap_id": tap}
        self._add(record, "queued", at, queue=queue, **fields)

    def _deaths(self, record: _Record, payload: Mapping[str, Any], at: int | None) -> None:
        """The dead-lettering an ``x-death`` header tells of (newest entry first), shown once each."""
        deaths = _headers_of(payload).get("x-death")
        if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
            return
        death = deaths[0]
        reason = _text(death.get("reason"))
        from_queue = _text(death.get("queue"))
        key = (from_queue, reason, death.get("count"), payload.get("exchange"), payload.get("routing_key"))
        if key in record.deaths:
            return
        record.deaths.add(key)
        broker_ms = _death_time_ms(death.get("time"))
        # x-death has second precision: never before what the lab saw of the message in that queue.
        seen = [s["at"] for s in record.stages if s.get("queue") == from_queue or s["stage"] in BEFORE_DEATH]
        when = max([t for t in (broker_ms, *seen) if t is not None], default=at)
        extra = {"x_death_time": broker_ms, "count": death.get("count")}
        if reason == "expired":
            self._add(record, "expired", when, queue=from_queue, x_death_time=broker_ms)
        self._add(
            record,
            "dead_lettered",
            when,
            from_queue=from_queue,
            reason=reason,
            to_exchange=_text(payload.get("exchange")),
            routing_key=_text(payload.get("routing_key")),
            **extra,
        )
        record.gen += 1

    # ----------------------------------------------------------------- the events
    def _published(self, payload: Mapping[str, Any]) -> None:
        message_id = _text(payload.get("id"))
        if message_id is None or payload.get("refused"):
            return
        record = self._record(message_id)
        assert record is not None
        record.exchange, record.routing_key = None, None
        record.properties = {}
        record.described = False
        self._describe(record, payload)
        now = self._now()
        at = _ms(payload.get("time"))
        self._add(record, "published", at, mandatory=bool(payload.get("mandatory")), size=payload.get("size"))
        if payload.get("confirmed"):
            self._add(record, "confirmed", max(now, at or now))
            if payload.get("routed") is False:
                self._add(
                    record,
                    "unroutable",
                    max(now, at or now),
                    source="broker",
                    mandatory=bool(payload.get("mandatory")),
                    dropped=bool(payload.get("dropped")),
                )
        elif payload.get("confirmed") is False:
            self._add(record, "nacked", max(now, at or now))
        if record.deaths:  # a dead-lettering seen before this event (x-death has second precision)
            latest = max(s["at"] for s in record.stages if s["stage"] in BEFORE_DEATH)
            for entry in record.stages:
                if entry["stage"] in ("expired", "dead_lettered"):
                    entry["at"] = max(entry["at"], latest)

    def _prediction(self, payload: Mapping[str, Any]) -> None:
        """``{"id", "matches": [RouteResult match dicts], "topology_version", "at"}`` (one ``routed`` each)."""
        message_id = _text(payload.get("id"))
        matches = payload.get("matches")
        if message_id is None or not isinstance(matches, list):
            return
        record = self._record(message_id)
        assert record is not None
        published = record.find("published")
        at = published["at"] if published else _ms(payload.get("at"))
        for match in matches:
            if not isinstance(match, dict):
                continue
            self._add(
                record,
                "routed",
                at,
                binding=match.get("binding"),
                destination=match.get("destination"),
                destination_type=match.get("destination_type"),
                via=match.get("via"),
                explanation=match.get("explanation"),
                lab=match.get("lab", False),
                source="prediction",
                topology_version=payload.get("topology_version"),
            )

    def _returned(self, payload: Mapping[str, Any]) -> None:
        message_id = _text(payload.get("id"))
        if message_id is None:
            return
        record = self._record(message_id)
        assert record is not None
        self._add(record, "returned", None, reply_code=payload.get("reply_code"), reply_text=payload.get("reply_text"))

    def _delivery(self, payload: Mapping[str, Any]) -> None:
        message_id = lab_id_of(payload)
        queue = payload.get("queue")
        if message_id is None or not isinstance(queue, str):
            return
        record = self._record(message_id)
        assert record is not None
        self._describe(record, payload)
        at = _ms(payload.get("time"))
        self._deaths(record, payload, at)
        self._queued(record, queue, at, source="delivery")
        fields = {
            "queue": queue,
            "consumer_id": payload.get("consumer_id"),
            "redelivered": bool(payload.get("redelivered")),
            "delivery_tag": payload.get("delivery_tag"),
            "exchange": payload.get("exchange"),
            "routing_key": payload.get("routing_key"),
            "ack": payload.get("ack"),
        }
        traced = next(
            (
                s
                for s in record.stages
                if s["stage"] == "delivered" and s.get("source") == "trace" and s.get("queue") == queue
            ),
            None,
        )
        if traced is not None:  # the firehose saw this delivery first: one stage, both sources
            traced.update(fields, source="lab", traced=True)
            traced["at"] = min(traced["at"], at) if at is not None else traced["at"]
        else:
            self._add(record, "delivered", at, source="lab", **fields)
        if payload.get("ack") == "auto":
            self._add(record, "acked", at, queue=queue, consumer_id=payload.get("consumer_id"), auto=True)

    def _settled(self, payload: Mapping[str, Any]) -> _Record | None:
        message_id = _text(payload.get("id"))
        return self._record(message_id, create=False) if message_id else None

    def _ack(self, payload: Mapping[str, Any]) -> None:
        record = self._settled(payload)
        if record is not None:
            self._add(
                record,
                "acked",
                _ms(payload.get("time")),
                queue=payload.get("queue"),
                consumer_id=payload.get("consumer_id"),
                delivery_tag=payload.get("delivery_tag"),
            )

    def _nack(self, payload: Mapping[str, Any]) -> None:
        record = self._settled(payload)
        if record is None:
            return
        stage = "requeued" if payload.get("requeue") else "rejected"
        at = _ms(payload.get("time"))
        entry = self._add(
            record,
            stage,
            at,
            queue=payload.get("queue"),
            consumer_id=payload.get("consumer_id"),
            delivery_tag=payload.get("delivery_tag"),
            kind=payload.get("kind"),
        )
        if stage == "rejected":
            self._before_its_dead_letter(record, entry)

    @staticmethod
    def _before_its_dead_letter(record: _Record, entry: dict[str, Any]) -> None:
        """A reject seen after the dead-lettered copy it caused (another consumer's connection was quicker):
        shown before that dead-lettering, which is never earlier than the reject."""
        queue = entry.get("queue")
        deaths = [
            s
            for s in record.stages
            if s["stage"] == "dead_lettered" and s.get("from_queue") == queue and s.get("reason") == "rejected"
        ]
        if not deaths:
            return
        dead = deaths[-1]
        since = deaths[-2]["_seq"] if len(deaths) > 1 else float("-inf")
        rejects = (s for s in record.stages if s["stage"] == "rejected" and s is not entry and s.get("queue") == queue)
        if any(since < s["_seq"] < dead["_seq"] for s in rejects):
            return  # that dead-lettering has its reject already
        dead["at"] = max(dead["at"], entry["at"])
        entry["_seq"] = dead["_seq"] - 0.5

    def _taps(self, payload: Any) -> None:
        if isinstance(payload, list):
            self._tap_queues = {
                t["id"]: t["queue"]
                for t in payload
                if isinstance(t, dict) and isinstance(t.get("id"), str) and isinstance(t.get("queue"), str)
            }

    def _tap(self, payload: Mapping[str, Any]) -> None:
        message_id = lab_id_of(payload)
        if message_id is None:
            return
        record = self._record(message_id)
        assert record is not None
        self._describe(record, payload)
        at = _ms(payload.get("time"))
        self._deaths(record, payload, at)
        queue = self._tap_queues.get(payload.get("tap_id"))  # type: ignore[arg-type]
        if queue is not None:
            self._queued(record, queue, at, source="tap")
        else:  # a tap the list has not named yet: still one copy seen, in a queue of the lab's
            self._add(record, "queued", at, queue=None, lab="tap", tap_id=payload.get("tap_id"), source="tap")

    def _route_disagreement(self, payload: Mapping[str, Any]) -> None:
        record = self._record(_text(payload.get("id")) or "", create=False)
        if record is not None:
            record.disagreement = dict(payload)

    def _trace(self, payload: Mapping[str, Any]) -> None:
        message_id = lab_id_of(payload)
        if message_id is None:
            return
        kind = payload.get("kind")
        at = _ms(payload.get("time"))
        if kind == "publish":
            record = self._record(message_id)
            assert record is not None
            self._describe(record, payload)
            self._deaths(record, payload, at)
            routed = payload.get("routed_queues")
            if not isinstance(routed, list):
                return
            for queue in routed:
                self._queued(record, queue, at, source="trace")
            if not routed and record.find("unroutable") is None:
                self._add(record, "unroutable", at, source="trace")
        elif kind == "deliver":
            record = self._record(message_id, create=False)
            queue = payload.get("queue")
            if record is None or not isinstance(queue, str):
                return
            self._queued(record, queue, at, source="trace")
            lab = next(
                (
                    s
                    for s in record.stages
                    if s["stage"] == "delivered"
                    and s.get("queue") == queue
                    and s.get("source") == "lab"
                    and not s.get("traced")
                ),
                None,
            )
            if lab is not None:
                lab["traced"] = True
                return
            self._add(
                record,
                "delivered",
                at,
                queue=queue,
                consumer_id=None,
                redelivered=bool(payload.get("redelivered")),
                connection=payload.get("connection"),
                source="trace",
            )
