"""One message's record in the :class:`lab.messages.MessageTimeline`, the stage names and their order, and the
readers of the event fields the timeline needs (pure: no I/O)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

ID_HEADER = "x-rabbitlens-id"
MESSAGES_KEPT = 10_000
MAX_STAGES = 100
# Of a message's stages past MAX_STAGES, the first KEEP_FIRST stay (published, routed, confirmed...).
KEEP_FIRST = 10

# Every stage. At the same millisecond (a tie in ``at``), the publish comes first, then its routing, then what
# the publisher heard (confirm, return); the rest keep the order the lab saw them in.
STAGES = (
    "published",
    "routed",
    "confirmed",
    "nacked",
    "unroutable",
    "returned",
    "queued",
    "delivered",
    "acked",
    "rejected",
    "requeued",
    "expired",
    "dead_lettered",
)
RANK = {name: min(i, 3) for i, name in enumerate(("published", "routed", "confirmed"))} | {
    "nacked": 2,
    "unroutable": 2,
    "returned": 2,
}
BEFORE_DEATH = ("published", "routed", "confirmed")  # a dead-lettering is never shown before these
DEATH_REASONS = ("rejected", "expired", "maxlen", "delivery_limit")


def _ms(seconds: Any) -> int | None:
    return round(seconds * 1000) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def lab_id_of(payload: Mapping[str, Any]) -> str | None:
    """The lab id of an event: ``id`` (deliveries, acks, and taps/trace after the one-shape change), else the
    flat ``lab_id`` of taps, else the message's own ``x-rabbitlens-id`` header (trace)."""
    for value in (payload.get("id"), payload.get("lab_id")):
        if isinstance(value, str) and value:
            return value
    headers = payload.get("headers")
    if not isinstance(headers, dict):
        properties = payload.get("properties")
        headers = properties.get("headers") if isinstance(properties, dict) else None
    value = headers.get(ID_HEADER) if isinstance(headers, dict) else None
    return value if isinstance(value, str) and value else None


def _headers_of(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = payload.get("properties")
    headers = properties.get("headers") if isinstance(properties, dict) else None
    if not isinstance(headers, dict):
        headers = payload.get("headers")
    return headers if isinstance(headers, dict) else {}


def _death_time_ms(value: Any) -> int | None:
    """An ``x-death`` ``time`` (a datetime pika made ISO text of, in UTC; or epoch seconds) as epoch ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _ms(value)
    if isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        return int(stamp.timestamp() * 1000)
    return None


class _Record:
    __slots__ = (
        "deaths",
        "described",
        "disagreement",
        "dropped",
        "exchange",
        "gen",
        "id",
        "properties",
        "queued",
        "routing_key",
        "seq",
        "stages",
    )

    def __init__(self, message_id: str) -> None:
        self.id = message_id
        self.exchange: str | None = None
        self.routing_key: str | None = None
        self.properties: dict[str, Any] = {}
        self.stages: list[dict[str, Any]] = []
        self.dropped = 0
        self.seq = 0
        self.queued: set[tuple[str, int]] = set()  # (queue, generation): one ``queued`` per queue per routing
        self.deaths: set[tuple[Any, ...]] = set()  # the x-death entries already shown
        self.gen = 0  # how many times it was dead-lettered (each one routes it anew)
        self.described = False  # exchange, key and properties known (from the publish, or a first copy)
        self.disagreement: dict[str, Any] | None = None  # the verifier found the broker routed it otherwise

    def find(self, stage: str, **match: Any) -> dict[str, Any] | None:
        for entry in self.stages:
            if entry["stage"] == stage and all(entry.get(k) == v for k, v in match.items()):
                return entry
        return None
