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

Bursts are in :mod:`rabbit.rpc_burst`, queue checks in :mod:`rabbit.rpc_probes`, the shape of a call and its
result in :mod:`rabbit.rpc_calls`, the connection loop in :mod:`rabbit.async_connection`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pika

from rabbit.async_connection import AsyncConnection, ConnectionHooks
from rabbit.correlation import ANSWERED, PendingCalls
from rabbit.errors import BrokerUnavailable, LabError
from rabbit.owners import STUCK_AFTER_S, register_owner
from rabbit.rpc_burst import Burst, RpcBursts
from rabbit.rpc_calls import (
    CALLBACK_QUEUE,
    DIRECT_REPLY_QUEUE,
    DIRECT_REPLY_TO,
    REPLY_MODES,
    SERVER_HEADER,
    Call,
    EventSink,
    as_error,
    decode_header,
    error_result,
    event_of,
    expiration_for,
    no_server_result,
    reply_problem,
    shorten,
)
from rabbit.rpc_probes import PROBE_TIMEOUT_S, QueueChecks
from rabbit.urls import redact_url
from rabbit.validation import check_name

log = logging.getLogger("rabbit.rpc")


class RpcClient(RpcBursts, ConnectionHooks):
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
        self._checks = QueueChecks(self._runner, name, probe_timeout)
        self._stuck_after = stuck_after
        self._callback_queue: str | None = None
        self._timer: Any = None
        self._timer_at: float | None = None
        self._burst_seq = 0
        self._running: dict[str, Burst] = {}
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
        since = self._checks.since
        if since is None:
            return None
        age = time.monotonic() - since
        return age if age > self._stuck_after else None

    @property
    def probe_recoveries(self) -> int:
        """Check channels replaced after a queue check the broker did not answer."""
        return self._checks.recoveries

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

        request = Call(body, n, queue, reply_mode, timeout_s, on_done)
        request.expiration = expiration_for(timeout_s) if expire else None
        if check_consumers:
            self._hand_over(lambda: self._probe(queue, lambda count, error: self._after_probe(request, count, error)))
        else:
            self._hand_over(lambda: self._send(request))
        if not done.wait(timeout_s + 10.0):  # the owner always answers first; this only guards against a bug
            raise BrokerUnavailable("the RPC client did not answer")
        result = box[0]
        if "error" in result:
            raise as_error(result)
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
        self._checks.open(connection)

    def on_connection_open_error(self, reason: str, error: BaseException) -> None:
        self._set_status(state="down", error=reason)

    def on_connection_closed(self, reason: str, error: BaseException) -> None:
        self._ready.clear()
        self._channel = None
        self._checks.channel = None
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
        """Owner: how many consume from ``queue`` (:meth:`QueueChecks.check`)."""
        self._checks.check(queue, on_count)

    # ================================================================== owner: calls
    def _after_probe(self, request: Call, consumers: int | None, error: str | None) -> None:
        if error == "broker_down":
            request.on_done(error_result(request, "BROKER_DOWN", self._down_text()))
            return
        if error:
            request.on_done(error_result(request, "BROKER_DOWN", error))
            return
        request.consumers = consumers or 0
        if not consumers:
            request.on_done(no_server_result(request, consumers))
            return
        self._send(request)

    def _send(self, request: Call) -> None:
        channel = self._channel
        if channel is None or not channel.is_open or not self._ready.is_set():
            request.on_done(error_result(request, "BROKER_DOWN", self._down_text()))
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
            request.on_done(error_result(request, "BROKER_DOWN", f"publish failed: {exc}"))
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
        request: Call = outcome.call.context
        latency = round(outcome.latency_ms or 0.0, 3)
        error = decode_header(headers.get("error"))
        if error is not None:
            result = error_result(request, "server_error", str(error))
            result["error"].update(server=server, latency_ms=latency)
            result.update(server=server, latency_ms=latency, body=shorten(text))
            if request.report:
                self._emit("rpc_error", event_of(result))
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
            request: Call = call.context
            consumers = request.consumers
            who = "no consumer" if consumers == 0 else f"{consumers} consumer(s) when sent"
            text = f"no reply within {request.timeout_s:g} s from {request.queue!r} ({who})"
            result = error_result(request, "timeout", text)
            result["error"].update(consumers=consumers, waited_ms=round(call.elapsed_ms(time.monotonic()), 1))
            if request.report:
                self._emit("rpc_timeout", event_of(result))
            request.on_done(result)
        self._arm_timer()

    def _fail_pending(self, message: str) -> None:
        for call in self._book.fail_all():
            request: Call = call.context
            result = error_result(request, "BROKER_DOWN", message)
            if request.report:
                self._emit("rpc_error", event_of(result))
            request.on_done(result)

    def _fail_everything(self) -> None:
        """The connection is gone: end every call, probe and burst in flight (never leave a caller hanging)."""
        self._timer = self._timer_at = None
        self._fail_pending(self._down_text() if self._status["state"] != "connected" else "connection lost")
        self._checks.connection_lost()

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event, payload)
        except Exception:
            log.exception("event sink failed on %s", event)
