"""Pairs RPC requests with their replies as seen in the firehose trace, for any application (pure, no I/O).

A request is a published message with both ``reply_to`` and ``correlation_id``. Its reply is a later publish
through the default exchange whose routing key is that ``reply_to`` and whose ``correlation_id`` is the same.
Direct reply-to is the one twist: the client names the pseudo-queue ``amq.rabbitmq.reply-to`` and the server
replies to a longer name the broker made from it (``amq.rabbitmq.reply-to.<token>``); such replies are paired by
correlation id among the direct reply-to requests.

Feed it trace events (the dicts of :mod:`rabbit.trace`: ``kind``, ``exchange``, ``routing_key``,
``routed_queues``, ``queue``, ``properties`` (with ``headers``), ``correlation_id``, ``reply_to``, ``body`` (the
preview object of :mod:`rabbit.message_view`), ``connection``, ``time``...); it returns the round trips each event
completes:

``{"status": "answered"|"error"|"duplicate"|"unanswered", "correlation_id", "client", "client_queue",
"request_queue", "server", "request_body", "reply_body", "latency_ms", "deliveries", "redelivered", ...}``

Latency is the difference of the trace events' ``time`` (when the copies reached the lab), so it is close to,
not exactly, what the client saw.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
SERVER_HEADER = "x-rpc-server"
BODY_LIMIT = 200

ANSWERED = "answered"
ERROR = "error"
DUPLICATE = "duplicate"
UNANSWERED = "unanswered"


def _short(text: Any, limit: int = BODY_LIMIT) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _body(event: dict[str, Any]) -> dict[str, Any]:
    body = event.get("body")
    return body if isinstance(body, dict) else {}


def _body_text(event: dict[str, Any]) -> str | None:
    """A trace event's body as text: the text itself, else its hex dump (a binary body)."""
    body = _body(event)
    return body.get("text") if body.get("text") is not None else body.get("hex")


def _headers(event: dict[str, Any]) -> dict[str, Any]:
    headers = (event.get("properties") or {}).get("headers")
    return headers if isinstance(headers, dict) else {}


def _is_direct(reply_to: str) -> bool:
    return reply_to == DIRECT_REPLY_TO or reply_to.startswith(DIRECT_REPLY_TO + ".")


@dataclass
class _Request:
    key: tuple[str, str]
    correlation_id: str
    reply_to: str
    client: str | None
    user: str | None
    exchange: str
    routing_key: str
    routed_queues: list[str]
    body: str | None
    body_size: int | None
    time: float
    deliveries: int = 0
    redelivered: bool = False
    consumer_connection: str | None = None
    delivered_queue: str | None = None


@dataclass
class RpcInspector:
    """The pairing state. Not thread-safe: feed it from one thread (the trace consumer's)."""

    unanswered_after_s: float = 30.0
    early_reply_s: float = 2.0
    keep: int = 500
    max_pending: int = 20_000
    remember_answered: int = 20_000
    _pending: OrderedDict[tuple[str, str], _Request] = field(default_factory=OrderedDict)
    _direct: dict[str, tuple[str, str]] = field(default_factory=dict)  # correlation id -> key, direct reply-to
    _answered: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)  # correlation id -> round trip
    _early: OrderedDict[tuple[str, str], dict[str, Any]] = field(default_factory=OrderedDict)
    _recent: deque = field(default_factory=deque)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "requests": 0,
            ANSWERED: 0,
            ERROR: 0,
            DUPLICATE: 0,
            UNANSWERED: 0,
            "unmatched_replies": 0,
            "dropped": 0,
        }
    )

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.keep)

    # ------------------------------------------------------------------ feeding
    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Take one trace event; the round trips it completes (usually none or one)."""
        cid = event.get("correlation_id")
        if not cid:
            return []
        kind = event.get("kind")
        if kind == "deliver":
            self._on_deliver(event, cid)
            return []
        if kind != "publish":
            return []
        done = self._as_reply(event, cid)
        if done is not None:
            return [done]
        if event.get("reply_to"):
            return self._on_request(event, cid)
        self._keep_early(event, cid)
        return []

    def expire(self, now: float) -> list[dict[str, Any]]:
        """Requests waiting longer than ``unanswered_after_s``: reported once as ``unanswered`` and forgotten."""
        out = []
        while self._pending:
            key, request = next(iter(self._pending.items()))
            if now - request.time < self.unanswered_after_s:
                break
            self._forget(key)
            out.append(self._record(request, None, UNANSWERED, now))
        while self._early and now - next(iter(self._early.values()))["time"] > self.early_reply_s:
            self._early.popitem(last=False)
            self.counts["unmatched_replies"] += 1
        return out

    def snapshot(self, now: float) -> dict[str, Any]:
        """Recent round trips (newest last), the requests still waiting, and the counters."""
        waiting = [
            {
                "correlation_id": r.correlation_id,
                "client": r.client,
                "client_queue": r.reply_to,
                "request_queue": r.routing_key,
                "routed": bool(r.routed_queues),
                "request_body": _short(r.body),
                "deliveries": r.deliveries,
                "age_ms": round((now - r.time) * 1000, 1),
            }
            for r in list(self._pending.values())[-100:]
        ]
        return {"roundtrips": list(self._recent), "waiting": waiting, "counts": dict(self.counts)}

    # ------------------------------------------------------------------ internals
    def _on_request(self, event: dict[str, Any], cid: str) -> list[dict[str, Any]]:
        reply_to = str(event["reply_to"])
        key = (reply_to, cid)
        if key in self._pending:  # the same request published again (a client retry): keep the first
            return []
        request = _Request(
            key=key,
            correlation_id=cid,
            reply_to=reply_to,
            client=event.get("connection"),
            user=event.get("user"),
            exchange=event.get("exchange") or "",
            routing_key=event.get("routing_key") or "",
            routed_queues=list(event.get("routed_queues") or []),
            body=_body_text(event),
            body_size=_body(event).get("size"),
            time=float(event.get("time") or 0.0),
        )
        self.counts["requests"] += 1
        self._pending[key] = request
        if _is_direct(reply_to):
            self._direct[cid] = key
        while len(self._pending) > self.max_pending:
            old_key = next(iter(self._pending))
            self._forget(old_key)
            self.counts["dropped"] += 1
        early = self._early.pop(key, None)
        if early is None and _is_direct(reply_to):
            early = next((e for k, e in self._early.items() if k[1] == cid and _is_direct(k[0])), None)
            if early is not None:
                self._early.pop((early["routing_key"], cid), None)
        if early is not None:
            done = self._as_reply(early, cid)
            return [done] if done is not None else []
        return []

    def _find(self, event: dict[str, Any], cid: str) -> tuple[str, str] | None:
        key = (event.get("routing_key") or "", cid)
        if key in self._pending:
            return key
        if _is_direct(key[0]):
            return self._direct.get(cid)
        return None

    def _as_reply(self, event: dict[str, Any], cid: str) -> dict[str, Any] | None:
        if event.get("exchange"):  # replies go through the default exchange
            return None
        key = self._find(event, cid)
        if key is None:
            first = self._answered.get(cid)
            to = str(event.get("routing_key") or "")
            if first is not None and (
                to == first["client_queue"] or (_is_direct(to) and _is_direct(first["client_queue"]))
            ):
                return self._duplicate(first, event)
            return None
        request = self._pending[key]
        self._forget(key)
        headers = _headers(event)
        status = ERROR if headers.get("error") is not None else ANSWERED
        record = self._record(request, event, status, float(event.get("time") or 0.0))
        self._answered[cid] = record
        while len(self._answered) > self.remember_answered:
            self._answered.popitem(last=False)
        return record

    def _duplicate(self, first: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        headers = _headers(event)
        record = {
            **first,
            "id": next(self._ids),
            "status": DUPLICATE,
            "server": headers.get(SERVER_HEADER) or event.get("connection"),
            "server_connection": event.get("connection"),
            "reply_body": _short(_body_text(event)),
            "error": headers.get("error"),
            "latency_ms": round((float(event.get("time") or 0.0) - first["requested_at"]) * 1000, 3),
            "replied_at": event.get("time"),
        }
        self.counts[DUPLICATE] += 1
        self._recent.append(record)
        return record

    def _on_deliver(self, event: dict[str, Any], cid: str) -> None:
        reply_to = event.get("reply_to")
        if not reply_to:
            return
        request = self._pending.get((str(reply_to), cid))
        if request is None and _is_direct(str(reply_to)):
            key = self._direct.get(cid)
            request = self._pending.get(key) if key else None
        if request is None:
            return
        request.deliveries += 1
        request.redelivered = request.redelivered or bool(event.get("redelivered"))
        request.consumer_connection = event.get("connection")
        request.delivered_queue = event.get("queue")

    def _keep_early(self, event: dict[str, Any], cid: str) -> None:
        """A reply-looking publish with no request yet: keep it briefly, the request's copy may come next."""
        if event.get("exchange") or not event.get("routing_key"):
            return
        self._early[(str(event["routing_key"]), cid)] = event
        while len(self._early) > 1000:
            self._early.popitem(last=False)
            self.counts["unmatched_replies"] += 1

    def _forget(self, key: tuple[str, str]) -> None:
        self._pending.pop(key, None)
        if self._direct.get(key[1]) == key:
            del self._direct[key[1]]

    def _record(self, request: _Request, reply: dict[str, Any] | None, status: str, now: float) -> dict[str, Any]:
        headers = _headers(reply or {})
        record = {
            "id": next(self._ids),
            "status": status,
            "correlation_id": request.correlation_id,
            "client": request.client,
            "user": request.user,
            "client_queue": request.reply_to,
            "request_exchange": request.exchange,
            "request_queue": request.delivered_queue or request.routing_key,
            "routed": bool(request.routed_queues),
            "request_body": _short(request.body),
            "request_size": request.body_size,
            "server": (headers.get(SERVER_HEADER) or (reply or {}).get("connection") or request.consumer_connection)
            if reply is not None
            else request.consumer_connection,
            "server_connection": (reply or {}).get("connection") or request.consumer_connection,
            "reply_body": _short(_body_text(reply)) if reply is not None else None,
            "error": headers.get("error"),
            "deliveries": request.deliveries,
            "redelivered": request.redelivered,
            "requested_at": request.time,
            "replied_at": reply.get("time") if reply is not None else None,
            "latency_ms": round((now - request.time) * 1000, 3) if reply is not None else None,
            "waited_ms": round((now - request.time) * 1000, 1),
        }
        self.counts[status] += 1
        self._recent.append(record)
        return record
