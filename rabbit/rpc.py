"""The lab's RPC client: one connection, one callback queue (and direct reply-to), many calls in flight.

The tutorial's client sends one request and spins ``process_data_events()`` until the answer comes: one call
at a time and a whole core burnt while it waits. This client keeps the wire protocol and fixes both:

- one owner thread (a greenlet once gevent has patched ``threading``) runs pika's asynchronous
  ``SelectConnection``; it blocks in ``poll`` between events, so waiting costs no CPU;
- every call gets a fresh ``correlation_id`` in a :class:`~rabbit.correlation.PendingCalls` book; replies on the
  one callback queue (or on ``amq.rabbitmq.reply-to``) are matched by id, stragglers become orphans;
- one timer, armed for the earliest deadline, turns overdue calls into timeouts;
- other threads hand work to the owner with ``ioloop.add_callback_threadsafe`` and wait on a ``threading.Event``;
  a burst runs entirely inside the owner, sending the next request from the previous one's reply callback.

A queue check the broker does not answer within ``probe_timeout`` seconds (a name it rewrote, say) fails that one
call, and the check channel is abandoned and replaced, so later calls never wait behind it; meanwhile
:attr:`RpcClient.status` says ``stuck`` (and health turns "degraded").

If the connection drops, calls in flight end as ``broker_down`` at once; the owner reconnects with backoff and
declares a new callback queue. Events go to the injected ``on_event(name, payload)``: ``rpc_request``,
``rpc_reply``, ``rpc_timeout``, ``rpc_error``, ``rpc_orphan``, ``rpc_burst_progress``, ``rpc_client_status``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pika

from rabbit.async_connection import AsyncConnection, ConnectionHooks
from rabbit.correlation import ANSWERED, PendingCalls
from rabbit.errors import BrokerUnavailable, LabError
from rabbit.fib import fib
from rabbit.owners import STUCK_AFTER_S, register_owner
from rabbit.urls import redact_url
from rabbit.validation import check_name

log = logging.getLogger(__name__)

CALLBACK_QUEUE = "callback_queue"
DIRECT_REPLY_TO = "direct_reply_to"
REPLY_MODES = (CALLBACK_QUEUE, DIRECT_REPLY_TO)
DIRECT_REPLY_QUEUE = "amq.rabbitmq.reply-to"
SERVER_HEADER = "x-rpc-server"
EVENT_TEXT_LIMIT = 120  # characters of a reply body put into an event (fib(100000) has 20899 digits)
BURST_REPORT_INTERVAL_S = 0.05  # at most ~20 sampled round trips per second of a burst go to the events
BURST_PROGRESS_INTERVAL_S = 0.1
BURST_MAX_PROBLEM_EVENTS = 200
DEFAULT_BURST_MAX_S = 600.0
NOT_AN_INTEGER = "not an exact integer: the server used floating point"
FIRST_ROUNDED_FIB_N = 79  # fib(79) > 2**53: from here on a double cannot hold fib(n) exactly
LARGEST_DOUBLE_FIB_N = 1476  # fib(1477) overflows a double (Infinity)
PROBE_TIMEOUT_S = 5.0  # a passive queue declare not answered by then: the check channel is replaced

EventSink = Callable[[str, dict[str, Any]], None]


class RpcTimeout(LabError):
    """No reply in time (``details``: ``queue``, ``consumers``, ``timeout_s``)."""

    code = "timeout"


class RpcServerError(LabError):
    """The server replied with an ``error`` header: its message is ours."""

    code = "server_error"


def shorten(text: str, limit: int = EVENT_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))  # ceil(fraction * n), at least 1
    return sorted_values[min(rank, len(sorted_values)) - 1]


def expiration_for(timeout_s: float) -> str:
    """The AMQP ``expiration`` (whole milliseconds, as text) of a request that nobody waits for after ``timeout_s``."""
    return str(max(1, math.ceil(timeout_s * 1000)))


def reply_problem(text: str, n: int | None = None) -> str | None:
    """Why a reply body is not a fib result (an exact decimal integer), or None when it is one.

    A tutorial server written with floating point (the Node one) answers fib(1000) as ``4.346655768693743e+208``
    and fib(1500) as ``Infinity``: those are flagged, never shown as the result. Below fib(1477) (the largest a
    double holds) an integer-looking reply is also checked against the exact value when ``n`` is known: doubles
    round from fib(79) up, so Node's fib(80) reads ``23416728348467684`` (exact: ...685).
    """
    stripped = text.strip()
    if stripped.isascii() and stripped.lstrip("-").isdigit():
        if n is None or not 0 <= n <= LARGEST_DOUBLE_FIB_N:
            return None
        exact = str(fib(n))
        if stripped == exact:
            return None
        if n >= FIRST_ROUNDED_FIB_N:
            return NOT_AN_INTEGER
        return f"wrong reply: fib({n}) is {exact}"
    lowered = stripped.lower()
    if lowered.lstrip("+-") in ("infinity", "inf", "nan") or _looks_like_float(lowered):
        return NOT_AN_INTEGER
    return "not an exact integer: the reply is not a decimal number"


def _looks_like_float(text: str) -> bool:
    if not text.isascii():  # float() also takes other scripts' digits; a server's floats are ASCII
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def decode_header(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass
class _Call:
    """A request on its way: what to send and whom to tell."""

    body: bytes
    n: int | None
    queue: str
    reply_mode: str
    timeout_s: float
    on_done: Callable[[dict[str, Any]], None]
    report: bool = True
    consumers: int | None = None
    correlation_id: str | None = None
    # The request's AMQP expiration (ms as text): the broker drops it unread once nobody waits for the reply.
    expiration: str | None = None


@dataclass
class _Burst:
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
    in_flight: dict[int, _Call] = field(default_factory=dict)  # by id() of the request
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

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/rpc/bursts`` lists of a running burst."""
        return {
            **self.progress(),
            "queue": self.queue,
            "reply_mode": self.reply_mode,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout_s,
            "max_s": self.max_s,
            "expire": self.expire,
            "started_at": self.created,
        }

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            **self.progress(),
            "queue": self.queue,
            "reply_mode": self.reply_mode,
            "concurrency": self.concurrency,
            "consumers": self.consumers,
            "broker_down": self.broker_down,
            "p50_ms": ms(percentile(lat, 0.50)),
            "p90_ms": ms(percentile(lat, 0.90)),
            "p99_ms": ms(percentile(lat, 0.99)),
            "max_ms": ms(lat[-1] if lat else None),
            "servers": dict(self.servers),
            "first_error": self.first_error,
        }


class RpcClient(ConnectionHooks):
    """A correlating RPC client on its own connection. Thread-safe public methods; pika stays in the owner."""

    def __init__(
        self,
        amqp_url: str,
        *,
        on_event: EventSink | None = None,
        name: str = "rabbitlens-rpc",
        heartbeat: int = 20,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        probe_timeout: float = PROBE_TIMEOUT_S,
        stuck_after: float = STUCK_AFTER_S,
    ) -> None:
        self.amqp_url = amqp_url
        self.name = name
        self._on_event = on_event
        self._runner = AsyncConnection(
            amqp_url,
            self,
            name=name,
            heartbeat=heartbeat,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self._book = PendingCalls()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._channel: Any = None
        self._probe_channel: Any = None
        self._probes: deque[tuple[str, Callable[[int | None, str | None], None]]] = deque()
        self._probe_busy = False
        self._probe_since: float | None = None  # monotonic time the running probe was sent
        self._probe_timer: Any = None
        self._probe_timeout = probe_timeout
        self._stuck_after = stuck_after
        self.probe_recoveries = 0
        self._callback_queue: str | None = None
        self._timer: Any = None
        self._timer_at: float | None = None
        self._burst_seq = 0
        self._running: dict[str, _Burst] = {}
        self.orphans = 0
        self._status: dict[str, Any] = {
            "state": "connecting",
            "url": redact_url(amqp_url),
            "callback_queue": None,
            "error": None,
            "reconnects": 0,
        }
        register_owner(self)

    # ================================================================== public, any thread
    @property
    def status(self) -> dict[str, Any]:
        """The connection state, ``pending`` calls, ``orphans``, ``stuck`` (a queue check unanswered past
        ``stuck_after`` s) and ``probe_recoveries`` (check channels replaced)."""
        return {
            **self._status,
            "pending": len(self._book),
            "orphans": self.orphans,
            "stuck": self.stuck_for() is not None,
            "probe_recoveries": self.probe_recoveries,
        }

    def stuck_for(self) -> float | None:
        """Seconds a queue check has been waiting for the broker past ``stuck_after``, or None."""
        since = self._probe_since
        if since is None:
            return None
        age = time.monotonic() - since
        return age if age > self._stuck_after else None

    @property
    def callback_queue(self) -> str | None:
        return self._callback_queue

    @property
    def _conn(self) -> pika.SelectConnection | None:
        return self._runner.connection

    def start(self) -> RpcClient:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"rpc-client:{self.name}", daemon=True)
            self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._runner.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def call(
        self,
        n: int | None = None,
        *,
        body: bytes | None = None,
        queue: str = "rpc_queue",
        timeout_s: float = 5.0,
        reply_mode: str = CALLBACK_QUEUE,
        check_consumers: bool = True,
        expire: bool = True,
    ) -> dict[str, Any]:
        """One call; returns ``{"correlation_id","n","result","latency_ms","reply_mode","server","expiration",
        "not_integer"}`` (``result`` is None and ``reply`` holds the body when the reply is not an exact integer).

        ``expire``: the request carries ``expiration`` = ``timeout_s``, so a server never works on it after the
        caller stopped waiting. Raises :class:`RpcTimeout` (also at once, when ``check_consumers`` finds nobody
        consuming ``queue``),
        :class:`RpcServerError` or :class:`BrokerUnavailable`.
        """
        if reply_mode not in REPLY_MODES:
            raise LabError(f"reply_mode must be one of {', '.join(REPLY_MODES)}", code="INVALID")
        queue = check_name(queue, "queue")
        if body is None:
            if n is None:
                raise LabError("give n or body", code="INVALID")
            body = str(n).encode("ascii")
        done = threading.Event()
        box: list[dict[str, Any]] = []

        def on_done(result: dict[str, Any]) -> None:
            box.append(result)
            done.set()

        request = _Call(body, n, queue, reply_mode, timeout_s, on_done)
        request.expiration = expiration_for(timeout_s) if expire else None
        if check_consumers:
            self._hand_over(lambda: self._probe(queue, lambda count, error: self._after_probe(request, count, error)))
        else:
            self._hand_over(lambda: self._send(request))
        if not done.wait(timeout_s + 10.0):  # the owner always answers first; this only guards against a bug
            raise BrokerUnavailable("the RPC client did not answer")
        result = box[0]
        if "error" in result:
            raise self._as_error(result)
        return result

    def consumer_count(self, queue: str, timeout: float = 5.0) -> int | None:
        """Consumers on ``queue`` now (None if the queue does not exist), by a passive declare."""
        queue = check_name(queue, "queue")
        done = threading.Event()
        box: list[tuple[int | None, str | None]] = []

        def on_count(count: int | None, error: str | None) -> None:
            box.append((count, error))
            done.set()

        self._hand_over(lambda: self._probe(queue, on_count))
        if not done.wait(timeout):
            raise BrokerUnavailable("the broker did not answer the queue check")
        count, error = box[0]
        if error == "broker_down":
            raise BrokerUnavailable(self._down_text())
        return count

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

        burst = _Burst(
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

    # ================================================================== owner: connection
    def _run(self) -> None:
        self._runner.run()
        self._set_status(state="stopped", callback_queue=None, error=None)

    def _set_status(self, **changes: Any) -> None:
        before = dict(self._status)
        self._status.update(changes)
        if self._status != before:
            self._emit("rpc_client_status", self.status)

    def on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)
        connection.channel(on_open_callback=self._on_probe_channel_open)

    def on_connection_open_error(self, reason: str, error: BaseException) -> None:
        self._set_status(state="down", error=reason)

    def on_connection_closed(self, reason: str, error: BaseException) -> None:
        self._ready.clear()
        self._channel = self._probe_channel = None
        if not self._runner.should_stop:
            self._set_status(state="down", error=reason)

    def on_closed(self) -> None:
        self._ready.clear()
        self._fail_everything()

    def on_reconnecting(self, delay: float) -> None:
        self._set_status(state="reconnecting", callback_queue=None)
        self._status["reconnects"] += 1

    def _on_channel_open(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.queue_declare("", exclusive=True, auto_delete=True, callback=self._on_callback_queue)

    def _on_callback_queue(self, frame: Any) -> None:
        self._callback_queue = frame.method.queue
        self._channel.basic_consume(self._callback_queue, self._on_reply, auto_ack=True)
        # Direct reply-to: replies come straight to this channel's consumer, no queue at all.
        self._channel.basic_consume(DIRECT_REPLY_QUEUE, self._on_reply, auto_ack=True, callback=self._on_consuming)

    def _on_consuming(self, _frame: Any) -> None:
        self._ready.set()
        self._runner.mark_ready()
        self._set_status(state="connected", callback_queue=self._callback_queue, error=None)
        log.info("%s: ready (callback queue %s)", self.name, self._callback_queue)

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self._channel:
            return
        self._channel = None
        self._ready.clear()
        if self._runner.should_stop or self._conn is None or not self._conn.is_open:
            return
        # A channel error (a publish to a forbidden exchange, say) ends the calls on it; start over on a new one.
        log.warning("%s: reply channel closed: %s", self.name, reason)
        self._fail_pending(f"the reply channel closed: {reason}")
        self._conn.channel(on_open_callback=self._on_channel_open)

    def _on_probe_channel_open(self, channel: Any) -> None:
        self._probe_channel = channel
        channel.add_on_close_callback(self._on_probe_channel_closed)
        self._next_probe()

    def _on_probe_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self._probe_channel:
            return
        self._probe_channel = None
        if self._probe_busy and self._probes:  # the head probe's queue does not exist (404)
            _, on_count = self._probes.popleft()
            self._probe_done()
            code = getattr(reason, "reply_code", 0)
            on_count(None, None if code == 404 else f"queue check failed: {reason}")
        if self._conn is not None and self._conn.is_open and not self._runner.should_stop:
            self._conn.channel(on_open_callback=self._on_probe_channel_open)

    # ================================================================== owner: probes
    def _hand_over(self, fn: Callable[[], None]) -> None:
        conn = self._conn
        if conn is None or not self._ready.is_set():
            raise BrokerUnavailable(self._down_text())

        def guarded() -> None:  # one failing job must not end the ioloop (and every call in flight with it)
            try:
                fn()
            except Exception:
                log.exception("%s: a handed-over job failed", self.name)

        try:
            conn.ioloop.add_callback_threadsafe(guarded)
        except Exception as exc:
            raise BrokerUnavailable(self._down_text()) from exc

    def _down_text(self) -> str:
        error = self._status.get("error")
        text = f"the RPC client's broker link is {self._status['state']}"
        return f"{text}: {error}" if error else text

    def _probe(self, queue: str, on_count: Callable[[int | None, str | None], None]) -> None:
        """Passive declare of ``queue``, one at a time on the probe channel: ``on_count(consumers|None, error)``."""
        if self._conn is None or not self._conn.is_open:
            on_count(None, "broker_down")
            return
        self._probes.append((queue, on_count))
        self._next_probe()

    def _next_probe(self) -> None:
        if self._probe_busy or not self._probes or self._probe_channel is None or not self._probe_channel.is_open:
            return
        queue, _ = self._probes[0]
        self._probe_busy = True
        self._probe_since = time.monotonic()
        self._probe_channel.queue_declare(queue, passive=True, callback=self._on_probe_answer)
        if self._conn is not None:
            self._probe_timer = self._conn.ioloop.call_later(self._probe_timeout, self._on_probe_stuck)

    def _probe_done(self) -> None:
        self._probe_busy = False
        self._probe_since = None
        if self._probe_timer is not None and self._conn is not None:
            self._conn.ioloop.remove_timeout(self._probe_timer)
        self._probe_timer = None

    def _on_probe_stuck(self) -> None:
        """The broker did not answer the head probe in time: fail it, abandon its channel (pika would queue
        every later declare behind the unanswered one) and open a new one for the probes that wait."""
        self._probe_timer = None
        if not self._probe_busy or not self._probes:
            return
        queue, on_count = self._probes.popleft()
        self._probe_done()
        self.probe_recoveries += 1
        channel, self._probe_channel = self._probe_channel, None  # its close callback is now ignored
        log.warning("%s: no answer to the check of queue %r: replacing the check channel", self.name, queue)
        with contextlib.suppress(Exception):  # queued behind the unanswered declare: it may never go out
            channel.close()
        on_count(None, f"the broker did not answer the check of queue {queue!r} within {self._probe_timeout:g} s")
        if self._conn is not None and self._conn.is_open and not self._runner.should_stop:
            self._conn.channel(on_open_callback=self._on_probe_channel_open)

    def _on_probe_answer(self, frame: Any) -> None:
        self._probe_done()
        _, on_count = self._probes.popleft()
        on_count(frame.method.consumer_count, None)
        self._next_probe()

    # ================================================================== owner: calls
    def _after_probe(self, request: _Call, consumers: int | None, error: str | None) -> None:
        if error == "broker_down":
            request.on_done(self._error_result(request, "BROKER_DOWN", self._down_text()))
            return
        if error:
            request.on_done(self._error_result(request, "BROKER_DOWN", error))
            return
        request.consumers = consumers or 0
        if not consumers:
            request.on_done(self._no_server_result(request, consumers))
            return
        self._send(request)

    def _no_server_result(self, request: _Call, consumers: int | None) -> dict[str, Any]:
        if consumers is None:
            text = f"queue {request.queue!r} does not exist: no server is running, nothing would answer"
        else:
            text = f"no server is consuming from {request.queue!r} (0 consumers): nothing would answer"
        result = self._error_result(request, "timeout", text)
        result["error"].update(consumers=consumers or 0, queue_exists=consumers is not None, waited_ms=0)
        return result

    def _error_result(self, request: _Call, code: str, message: str) -> dict[str, Any]:
        return {
            "correlation_id": request.correlation_id,
            "n": request.n,
            "queue": request.queue,
            "reply_mode": request.reply_mode,
            "error": {"code": code, "message": message, "timeout_s": request.timeout_s, "queue": request.queue},
        }

    def _send(self, request: _Call) -> None:
        channel = self._channel
        if channel is None or not channel.is_open or not self._ready.is_set():
            request.on_done(self._error_result(request, "BROKER_DOWN", self._down_text()))
            return
        now = time.monotonic()
        call = self._book.add(now, request.timeout_s, context=request)
        request.correlation_id = call.correlation_id
        reply_to = DIRECT_REPLY_QUEUE if request.reply_mode == DIRECT_REPLY_TO else self._callback_queue
        props = pika.BasicProperties(
            reply_to=reply_to,
            correlation_id=call.correlation_id,
            content_type="text/plain",
            expiration=request.expiration,
        )
        try:
            channel.basic_publish("", request.queue, request.body, props)
        except Exception as exc:
            self._book.cancel(call.correlation_id)
            request.on_done(self._error_result(request, "BROKER_DOWN", f"publish failed: {exc}"))
            return
        self._arm_timer()
        if request.report:
            self._emit(
                "rpc_request",
                {
                    "correlation_id": call.correlation_id,
                    "n": request.n,
                    "body": shorten(request.body.decode("utf-8", "replace")),
                    "queue": request.queue,
                    "reply_to": reply_to,
                    "reply_mode": request.reply_mode,
                    "timeout_s": request.timeout_s,
                    "expiration": request.expiration,
                    "consumers": request.consumers,
                    "time": time.time(),
                },
            )

    def _on_reply(self, _channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        now = time.monotonic()
        outcome = self._book.on_reply(props.correlation_id, now)
        headers = props.headers or {}
        server = decode_header(headers.get(SERVER_HEADER))
        text = body.decode("utf-8", "replace")
        if outcome.kind != ANSWERED:
            self.orphans += 1
            self._emit(
                "rpc_orphan",
                {
                    "correlation_id": props.correlation_id,
                    "reason": outcome.kind,
                    "server": server,
                    "body": shorten(text),
                    "latency_ms": None if outcome.latency_ms is None else round(outcome.latency_ms, 3),
                    "reply_to": "direct" if method.routing_key.startswith(DIRECT_REPLY_QUEUE) else method.routing_key,
                    "time": time.time(),
                },
            )
            return
        request: _Call = outcome.call.context
        latency = round(outcome.latency_ms or 0.0, 3)
        error = decode_header(headers.get("error"))
        if error is not None:
            result = self._error_result(request, "server_error", str(error))
            result["error"].update(server=server, latency_ms=latency)
            result.update(server=server, latency_ms=latency, body=shorten(text))
            if request.report:
                self._emit("rpc_error", self._event_of(result))
        else:
            problem = reply_problem(text, request.n)
            result = {
                "correlation_id": request.correlation_id,
                "n": request.n,
                "result": text if problem is None else None,
                "latency_ms": latency,
                "reply_mode": request.reply_mode,
                "server": server,
                "queue": request.queue,
                "expiration": request.expiration,
                "not_integer": problem,
            }
            if problem is not None:
                result["reply"] = shorten(text, 1000)
            if request.report:
                event = {**result, "digits": None if problem else len(text), "time": time.time()}
                event["result"] = None if problem else shorten(text)
                self._emit("rpc_reply", event)
        request.on_done(result)
        self._arm_timer()

    def _event_of(self, result: dict[str, Any]) -> dict[str, Any]:
        error = result["error"]
        return {
            "correlation_id": result.get("correlation_id"),
            "n": result.get("n"),
            "queue": result.get("queue"),
            "reply_mode": result.get("reply_mode"),
            "code": error["code"],
            "message": error["message"],
            "server": error.get("server"),
            "latency_ms": error.get("latency_ms"),
            "consumers": error.get("consumers"),
            "timeout_s": error.get("timeout_s"),
            "time": time.time(),
        }

    def _arm_timer(self) -> None:
        """Keep one timer, set for the earliest deadline in the book (none when nothing waits)."""
        conn = self._conn
        if conn is None:
            return
        deadline = self._book.next_deadline()
        if deadline is None:
            if self._timer is not None:
                conn.ioloop.remove_timeout(self._timer)
                self._timer = self._timer_at = None
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline + 0.001:
            return
        if self._timer is not None:
            conn.ioloop.remove_timeout(self._timer)
        self._timer_at = deadline
        self._timer = conn.ioloop.call_later(max(0.0, deadline - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        for call in self._book.expire(time.monotonic()):
            request: _Call = call.context
            consumers = request.consumers
            who = "no consumer" if consumers == 0 else f"{consumers} consumer(s) when sent"
            text = f"no reply within {request.timeout_s:g} s from {request.queue!r} ({who})"
            result = self._error_result(request, "timeout", text)
            result["error"].update(consumers=consumers, waited_ms=round(call.elapsed_ms(time.monotonic()), 1))
            if request.report:
                self._emit("rpc_timeout", self._event_of(result))
            request.on_done(result)
        self._arm_timer()

    def _fail_pending(self, message: str) -> None:
        for call in self._book.fail_all():
            request: _Call = call.context
            result = self._error_result(request, "BROKER_DOWN", message)
            if request.report:
                self._emit("rpc_error", self._event_of(result))
            request.on_done(result)

    def _fail_everything(self) -> None:
        """The connection is gone: end every call, probe and burst in flight (never leave a caller hanging)."""
        self._timer = self._timer_at = None
        self._fail_pending(self._down_text() if self._status["state"] != "connected" else "connection lost")
        probes = list(self._probes)
        self._probes.clear()
        self._probe_busy = False
        self._probe_since = None
        self._probe_timer = None
        for _, on_count in probes:
            on_count(None, "broker_down")

    # ================================================================== owner: bursts
    def _burst_begin(self, burst: _Burst, consumers: int | None, error: str | None) -> None:
        if burst.done.is_set():  # cancelled while its queue was being checked
            return
        if error:
            burst.failure = BrokerUnavailable(self._down_text() if error == "broker_down" else error)
            burst.done.set()
            return
        burst.consumers = consumers
        if not consumers:
            probe = _Call(b"", None, burst.queue, burst.reply_mode, burst.timeout_s, lambda _: None)
            burst.failure = self._as_error(self._no_server_result(probe, consumers))
            burst.done.set()
            return
        burst.started = burst.last_progress = time.monotonic()
        if burst.cancelled is None and self._conn is not None:
            reason = f"time limit: it ran {burst.max_s:g} s, the most a burst may (RABBITLENS_RPC_BURST_MAX_S)"
            burst.timer = self._conn.ioloop.call_later(burst.max_s, lambda: self._burst_cancel(burst, reason))
        self._burst_fill(burst)
        self._burst_report(burst)  # at once: the page learns the burst's id (to cancel it) before any reply

    def _burst_fill(self, burst: _Burst) -> None:
        while burst.sent - burst.finished < burst.concurrency and burst.sent < burst.calls:
            n = next(burst.ns)
            now = time.monotonic()
            report = burst.sent < 10 or now - burst.last_report >= BURST_REPORT_INTERVAL_S
            if report:
                burst.last_report = now
            request = _Call(
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

    def _burst_on_done(self, burst: _Burst, request: _Call, result: dict[str, Any]) -> None:
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

    def _burst_end(self, burst: _Burst) -> None:
        if burst.done.is_set():
            return
        burst.ended = time.monotonic()
        if burst.timer is not None and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.ioloop.remove_timeout(burst.timer)
        burst.timer = None
        self._burst_report(burst)
        burst.done.set()

    def _burst_cancel(self, burst: _Burst, reason: str) -> None:
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

    def _burst_report(self, burst: _Burst) -> None:
        if burst.on_progress is not None:
            try:
                burst.on_progress(burst.progress())
            except Exception:
                log.exception("burst progress callback failed")

    # ================================================================== helpers
    def _as_error(self, result: dict[str, Any]) -> LabError:
        error = dict(result["error"])
        code = error.pop("code")
        message = error.pop("message")
        if code == "timeout":
            return RpcTimeout(message, details={**error, "correlation_id": result.get("correlation_id")})
        if code == "server_error":
            return RpcServerError(message, details={**error, "correlation_id": result.get("correlation_id")})
        if code == "BROKER_DOWN":
            return BrokerUnavailable(message)
        return LabError(message, code=code, details=error)

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event, payload)
        except Exception:
            log.exception("event sink failed on %s", event)
