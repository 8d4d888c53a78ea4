"""RPC bursts: many calls with up to ``concurrency`` in flight, run inside the RPC client's owner.

A burst sends the next request from the previous one's reply callback, so it never waits between calls; it ends
when every call is answered (or timed out), after ``max_s`` seconds at most, or when cancelled (its page went, a
``DELETE``). Its progress is reported at most every ``BURST_PROGRESS_INTERVAL_S``; only a sample of its round trips
becomes ``rpc_request`` / ``rpc_reply`` events, and its latencies end in a summary (:mod:`rabbit.rpc_stats`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rabbit.correlation import PendingCalls
from rabbit.errors import BrokerUnavailable, LabError
from rabbit.rpc_calls import CALLBACK_QUEUE, Call, as_error, expiration_for, no_server_result
from rabbit.rpc_stats import latency_summary
from rabbit.validation import check_name

log = logging.getLogger("rabbit.rpc")

BURST_REPORT_INTERVAL_S = 0.05  # at most ~20 sampled round trips per second of a burst go to the events
BURST_PROGRESS_INTERVAL_S = 0.1
BURST_MAX_PROBLEM_EVENTS = 200
DEFAULT_BURST_MAX_S = 600.0


@dataclass
class Burst:
    ns: Iterator[int]
    calls: int
    concurrency: int
    queue: str
    reply_mode: str
    timeout_s: float
    burst_id: str
    on_progress: Callable[[dict[str, Any]], None] | None
    max_s: float = DEFAULT_BURST_MAX_S
    expire: bool = True
    done: threading.Event = field(default_factory=threading.Event)
    in_flight: dict[int, Call] = field(default_factory=dict)  # by id() of the request
    cancelled: str | None = None  # why the burst was cancelled (time limit, its page went, a DELETE)
    cancelled_calls: int = 0
    not_integer: int = 0
    created: float = field(default_factory=time.time)
    timer: Any = None
    sent: int = 0
    finished: int = 0
    ok: int = 0
    errors: int = 0
    timeouts: int = 0
    broker_down: int = 0
    consumers: int | None = None
    latencies: list[float] = field(default_factory=list)
    servers: Counter = field(default_factory=Counter)
    first_error: str | None = None
    started: float = 0.0
    ended: float = 0.0
    last_report: float = 0.0
    last_progress: float = 0.0
    problem_events: int = 0
    failure: LabError | None = None

    def progress(self) -> dict[str, Any]:
        elapsed = (self.ended or time.monotonic()) - self.started
        return {
            "burst_id": self.burst_id,
            "done": self.finished,
            "calls": self.calls,
            "ok": self.ok,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "not_integer": self.not_integer,
            "in_flight": len(self.in_flight),
            "elapsed_s": round(elapsed, 3) if self.started else 0.0,
            "calls_per_s": round(self.finished / elapsed, 1) if self.started and elapsed > 0 else 0.0,
            "cancelled": self.cancelled,
            "cancelled_calls": self.cancelled_calls,
        }

    def _with_settings(self) -> dict[str, Any]:
        return {**self.progress(), "queue": self.queue, "reply_mode": self.reply_mode, "concurrency": self.concurrency}

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/rpc/bursts`` lists of a running burst."""
        return {
            **self._with_settings(),
            "timeout_s": self.timeout_s,
            "max_s": self.max_s,
            "expire": self.expire,
            "started_at": self.created,
        }

    def summary(self) -> dict[str, Any]:
        return {
            **self._with_settings(),
            "consumers": self.consumers,
            "broker_down": self.broker_down,
            **latency_summary(self.latencies),
            "servers": dict(self.servers),
            "first_error": self.first_error,
        }


class RpcBursts:
    """The burst half of :class:`~rabbit.rpc_client.RpcClient` (a mixin): the public ``burst`` methods run in any
    thread, the ``_burst_*`` ones in the client's owner, on its ``_send``, ``_book`` and ``_runner``."""

    name: str
    _book: PendingCalls
    _ready: threading.Event
    _running: dict[str, Burst]
    _burst_seq: int
    _conn: Any
    _hand_over: Callable[[Callable[[], None]], None]
    _probe: Callable[[str, Callable[[int | None, str | None], None]], None]
    _send: Callable[[Call], None]
    _arm_timer: Callable[[], None]
    _down_text: Callable[[], str]

    def burst(
        self,
        ns: Sequence[int],
        *,
        calls: int | None = None,
        concurrency: int = 1,
        queue: str = "rpc_queue",
        reply_mode: str = CALLBACK_QUEUE,
        timeout_s: float = 5.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        burst_id: str | None = None,
        max_s: float = DEFAULT_BURST_MAX_S,
        expire: bool = True,
    ) -> dict[str, Any]:
        """Send ``calls`` requests (cycling through ``ns``) with at most ``concurrency`` in flight; the summary.

        The burst ends after ``max_s`` seconds at most (what is left is cancelled, ``cancelled`` says why), or
        earlier by :meth:`cancel_burst`. Raises :class:`RpcTimeout` at once if nobody consumes ``queue``.
        """
        if not ns:
            raise LabError("ns must not be empty", code="INVALID")
        queue = check_name(queue, "queue")
        total = len(ns) if calls is None else calls

        def cycle() -> Iterator[int]:
            while True:
                yield from ns

        burst = Burst(
            cycle(),
            total,
            max(1, concurrency),
            queue,
            reply_mode,
            timeout_s,
            burst_id or self.new_burst_id(),
            on_progress,
            max_s=max_s,
            expire=expire,
        )
        self._running[burst.burst_id] = burst
        try:
            self._hand_over(lambda: self._probe(queue, lambda count, error: self._burst_begin(burst, count, error)))
            longest = min(timeout_s * (total / burst.concurrency + 1), max_s + timeout_s) + 30.0
            if not burst.done.wait(longest):
                raise BrokerUnavailable("the burst did not finish")
        finally:
            self._running.pop(burst.burst_id, None)
        if burst.failure is not None:
            burst.failure.details.setdefault("burst_id", burst.burst_id)
            raise burst.failure
        return burst.summary()

    def new_burst_id(self) -> str:
        self._burst_seq += 1
        return f"b{self._burst_seq}-{int(time.time() * 1000) % 10**8}"

    def running_bursts(self) -> list[dict[str, Any]]:
        """The bursts running now, oldest first."""
        return [burst.describe() for burst in sorted(list(self._running.values()), key=lambda b: b.created)]

    def cancel_burst(self, burst_id: str, reason: str = "cancelled", *, wait: bool = True) -> dict[str, Any] | None:
        """Stop a running burst: nothing more is sent, the calls in flight are dropped (a late reply to one is an
        orphan). Returns its progress once cancelled, or None when no such burst runs."""
        burst = self._running.get(burst_id)
        if burst is None:
            return None
        # Without an owner loop to run it on, the connection's end finishes the burst anyway.
        with contextlib.suppress(BrokerUnavailable):
            self._hand_over(lambda: self._burst_cancel(burst, reason))
        if wait:
            burst.done.wait(5.0)
        return burst.progress()

    def _burst_begin(self, burst: Burst, consumers: int | None, error: str | None) -> None:
        if burst.done.is_set():  # cancelled while its queue was being checked
            return
        if error:
            burst.failure = BrokerUnavailable(self._down_text() if error == "broker_down" else error)
            burst.done.set()
            return
        burst.consumers = consumers
        if not consumers:
            probe = Call(b"", None, burst.queue, burst.reply_mode, burst.timeout_s, lambda _: None)
            burst.failure = as_error(no_server_result(probe, consumers))
            burst.done.set()
            return
        burst.started = burst.last_progress = time.monotonic()
        if burst.cancelled is None and self._conn is not None:
            reason = f"time limit: it ran {burst.max_s:g} s, the most a burst may (RABBITLENS_RPC_BURST_MAX_S)"
            burst.timer = self._conn.ioloop.call_later(burst.max_s, lambda: self._burst_cancel(burst, reason))
        self._burst_fill(burst)
        self._burst_report(burst)  # at once: the page learns the burst's id (to cancel it) before any reply

    def _burst_fill(self, burst: Burst) -> None:
        while burst.sent - burst.finished < burst.concurrency and burst.sent < burst.calls:
            n = next(burst.ns)
            now = time.monotonic()
            report = burst.sent < 10 or now - burst.last_report >= BURST_REPORT_INTERVAL_S
            if report:
                burst.last_report = now
            request = Call(
                str(n).encode("ascii"),
                n,
                burst.queue,
                burst.reply_mode,
                burst.timeout_s,
                lambda _result: None,
                report=report,
                consumers=burst.consumers,
                expiration=expiration_for(burst.timeout_s) if burst.expire else None,
            )
            request.on_done = lambda result, b=burst, r=request: self._burst_on_done(b, r, result)
            burst.sent += 1
            burst.in_flight[id(request)] = request
            self._send(request)

    def _burst_on_done(self, burst: Burst, request: Call, result: dict[str, Any]) -> None:
        if burst.in_flight.pop(id(request), None) is None:  # cancelled with its burst
            return
        burst.finished += 1
        error = result.get("error")
        if error is None:
            burst.ok += 1
            burst.not_integer += result.get("not_integer") is not None
            burst.latencies.append(result["latency_ms"])
            burst.servers[result.get("server") or "?"] += 1
        else:
            if error["code"] == "timeout":
                burst.timeouts += 1
            else:
                burst.errors += 1
                if error["code"] == "BROKER_DOWN":
                    burst.broker_down += 1
            burst.first_error = burst.first_error or error["message"]
        now = time.monotonic()
        if burst.finished >= burst.calls:
            self._burst_end(burst)
            return
        if now - burst.last_progress >= BURST_PROGRESS_INTERVAL_S:
            burst.last_progress = now
            self._burst_report(burst)
        if self._conn is not None and self._ready.is_set():
            self._burst_fill(burst)
        else:  # the broker is gone: account the rest as broker_down without sending
            rest = burst.calls - burst.sent
            burst.sent += rest
            burst.finished += rest
            burst.errors += rest
            burst.broker_down += rest
            burst.first_error = burst.first_error or self._down_text()
            if burst.sent == burst.finished:
                self._burst_end(burst)

    def _burst_end(self, burst: Burst) -> None:
        if burst.done.is_set():
            return
        burst.ended = time.monotonic()
        if burst.timer is not None and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.ioloop.remove_timeout(burst.timer)
        burst.timer = None
        self._burst_report(burst)
        burst.done.set()

    def _burst_cancel(self, burst: Burst, reason: str) -> None:
        """Owner: end ``burst`` now; its calls in flight leave the book (their replies become orphans)."""
        if burst.done.is_set() or burst.cancelled is not None:
            return
        burst.cancelled = reason
        for request in list(burst.in_flight.values()):
            if request.correlation_id is not None:
                self._book.cancel(request.correlation_id)
        burst.in_flight.clear()
        burst.cancelled_calls = burst.calls - burst.finished
        burst.first_error = burst.first_error or f"cancelled: {reason}"
        if not burst.started:
            burst.started = time.monotonic()
        log.info("%s: burst %s cancelled (%s)", self.name, burst.burst_id, reason)
        self._burst_end(burst)
        self._arm_timer()

    def _burst_report(self, burst: Burst) -> None:
        if burst.on_progress is not None:
            try:
                burst.on_progress(burst.progress())
            except Exception:
                log.exception("burst progress callback failed")
