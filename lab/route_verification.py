"""Explain, then verify: the routing engine's prediction beside the broker's own routing decision.

With the firehose on, every publish on the vhost (by any application) arrives as a ``trace`` event whose
``routed_queues`` are where the broker put it. :class:`RouteVerifier` asks the ``predict`` function it is handed
where the engine would route the same exchange, routing key and headers, compares the two sets of queues (the
lab's own tap queues are in both: the broker routes copies to them and the engine counts them, marked as the
lab's), counts agreements and keeps the last disagreements. No I/O of its own: ``predict`` does the reading.

A disagreement is first checked against a fresh read of the topology (``predict(..., fresh=True)``): an
application that declares a binding and publishes at once is ahead of the lab's cached listing, which is the
lab being late, not the engine being wrong; that counts as agreed (``agreed_after_reread``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

DISAGREEMENTS_KEPT = 100
ID_HEADER = "x-rabbitlens-id"


class Predict(Protocol):
    def __call__(
        self, exchange: str, routing_key: str, headers: Mapping[str, Any], *, fresh: bool = False
    ) -> Mapping[str, Any] | None:
        """``{"queues", "lab_queues", "routed", "topology_version"}``, or None when the engine cannot say."""
        ...


def _queues(values: Any) -> list[str]:
    return sorted({v for v in values if isinstance(v, str)}) if isinstance(values, list | tuple) else []


class RouteVerifier:
    """Compares predictions with the broker's ``routed_queues``; thread-safe counters and the last disagreements."""

    def __init__(
        self, predict: Predict, *, keep: int = DISAGREEMENTS_KEPT, clock: Callable[[], float] = time.time
    ) -> None:
        self.predict = predict
        self.clock = clock
        self.checked = 0
        self.agreed = 0
        self.agreed_after_reread = 0
        self.unknown = 0  # publishes the engine could not predict (an exchange it cannot see the bindings of...)
        self.disagreed_total = 0
        self._disagreed: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def check(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """Verify one ``trace`` event: None when it is not a publish, unknown or agreed; else the disagreement."""
        if event.get("kind") != "publish" or not isinstance(event.get("routed_queues"), list):
            return None
        exchange = event.get("exchange") if isinstance(event.get("exchange"), str) else ""
        routing_key = event.get("routing_key") if isinstance(event.get("routing_key"), str) else ""
        headers = _headers(event)
        broker = _queues(event["routed_queues"])
        first = self._predict(exchange, routing_key, headers, fresh=False)
        if first is None:
            return self._count_unknown()
        predicted = _queues(first.get("queues"))
        if predicted == broker:
            return self._count_agreed(False)
        again = self._predict(exchange, routing_key, headers, fresh=True)
        repredicted = None if again is None else _queues(again.get("queues"))
        if repredicted == broker:
            return self._count_agreed(True)
        lab_queues = set(_queues(first.get("lab_queues"))) | set(_queues((again or {}).get("lab_queues")))
        record = {
            "at": round(self.clock() * 1000),
            "published_at": _epoch_ms(event.get("time")),
            "id": _lab_id(headers),
            "exchange": exchange,
            "routing_key": routing_key,
            "headers": dict(headers),
            "broker": broker,
            "predicted": predicted,
            "repredicted": repredicted,
            "only_broker": [q for q in broker if q not in (repredicted if repredicted is not None else predicted)],
            "only_predicted": [q for q in (repredicted if repredicted is not None else predicted) if q not in broker],
            "lab_queues": sorted(lab_queues),
            "topology_version": {
                "predicted": first.get("topology_version"),
                "reread": (again or {}).get("topology_version"),
            },
            "connection": event.get("connection"),
            "user": event.get("user"),
        }
        with self._lock:
            self.checked += 1
            self.disagreed_total += 1
            self._disagreed.append(record)
        return record

    def summary(self) -> dict[str, Any]:
        """``{"checked", "agreed", "agreed_after_reread", "unknown", "disagreed_total", "disagreed": [...]}``."""
        with self._lock:
            return {
                "checked": self.checked,
                "agreed": self.agreed,
                "agreed_after_reread": self.agreed_after_reread,
                "unknown": self.unknown,
                "disagreed_total": self.disagreed_total,
                "disagreed": list(self._disagreed),
            }

    # ----------------------------------------------------------------- inside
    def _predict(
        self, exchange: str, routing_key: str, headers: Mapping[str, Any], *, fresh: bool
    ) -> Mapping[str, Any] | None:
        answer = self.predict(exchange, routing_key, headers, fresh=fresh)
        if answer is None or answer.get("routed") is None:
            return None
        return answer

    def _count_unknown(self) -> None:
        with self._lock:
            self.unknown += 1
        return None

    def _count_agreed(self, after_reread: bool) -> None:
        with self._lock:
            self.checked += 1
            self.agreed += 1
            self.agreed_after_reread += after_reread
        return None


def _epoch_ms(seconds: Any) -> int | None:
    return round(seconds * 1000) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None


def _headers(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The message's headers: the trace's flat ``headers``, or those of its ``properties`` (the one message shape)."""
    headers = event.get("headers")
    if isinstance(headers, Mapping):
        return headers
    properties = event.get("properties")
    headers = properties.get("headers") if isinstance(properties, Mapping) else None
    return headers if isinstance(headers, Mapping) else {}


def _lab_id(headers: Mapping[str, Any]) -> str | None:
    value = headers.get(ID_HEADER)
    return value if isinstance(value, str) else None
