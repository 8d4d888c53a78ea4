"""One pika connection, one owner: the ``BrokerLink``.

pika connections and channels are not thread-safe. A ``BrokerLink`` owns one ``BlockingConnection`` in one
thread (a greenlet when gevent has patched ``threading``): that owner connects, keeps the connection pumped
(heartbeats, consumer callbacks), reconnects with backoff when the broker goes away, and runs work that
other threads or greenlets hand it through :meth:`BrokerLink.call`. Every state change is reported to an
injected ``on_status`` callback.

This is the only module that creates pika connections for the app, so a later move to pika 1.5's
thread-safe connection class stays small.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel

from rabbit.errors import BrokerError, BrokerUnavailable
from rabbit.reasons import blocked_text, plain_reason, quiet_pika_logs
from rabbit.urls import redact_url

log = logging.getLogger(__name__)
quiet_pika_logs()  # pika's six ERROR lines and a traceback per failed attempt go to debug; the lab says it once

T = TypeVar("T")

CONNECTED = "connected"
CONNECTING = "connecting"
RECONNECTING = "reconnecting"
DOWN = "down"
STOPPED = "stopped"

# Errors that mean "the connection is gone", as opposed to a channel error the broker reports.
CONNECTION_LOST = (
    pex.AMQPConnectionError,
    pex.ConnectionWrongStateError,
    pex.StreamLostError,
    OSError,
)


def connection_parameters(url: str, name: str, *, heartbeat: int | None = None) -> pika.URLParameters:
    """The lab's parameters for a connection to ``url``: one attempt, a 5 s socket timeout, and a name the broker
    shows (``rabbitmqctl list_connections client_properties``, the management UI)."""
    params = pika.URLParameters(url)
    if heartbeat is not None:
        params.heartbeat = heartbeat
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name, "product": "RabbitLens"}
    return params


def describe_error(exc: BaseException, url: str = "") -> str:
    """A short plain text for a connection failure ("connection refused at 127.0.0.1:5999", "authentication
    failed for user 'guest'"...; pika's own reprs are class names): :func:`rabbit.reasons.plain_reason`."""
    return plain_reason(exc, url)


class BrokerLink:
    """Owns one AMQP connection; runs handed-in work on it; reconnects with backoff.

    ``on_connected(connection)`` runs in the owner after every (re)connect: the place to re-declare
    queues and re-attach consumers. ``on_status(status)`` is called with :attr:`status` on every change.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "rabbitlens",
        on_status: Callable[[dict[str, Any]], None] | None = None,
        on_connected: Callable[[pika.BlockingConnection], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        heartbeat: int = 20,
        pump_interval: float = 0.25,
    ) -> None:
        self.url = url
        self.name = name
        self._on_status = on_status
        self._on_connected = on_connected
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._pump_interval = pump_interval
        params = connection_parameters(url, name, heartbeat=heartbeat)
        params.blocked_connection_timeout = 30
        self._params = params
        self._jobs: deque[tuple[Callable[[BlockingChannel], Any], Future]] = deque()
        self._jobs_lock = threading.Lock()
        self._stopping = threading.Event()
        self._connected_event = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner_ident: int | None = None
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._status: dict[str, Any] = {
            "connected": False,
            "state": CONNECTING,
            "url": redact_url(url),
            "server_version": None,
            "error": None,
            "attempts": 0,
            "since": time.time(),
            "retry_at": None,  # epoch seconds of the next attempt while it cannot connect
            "blocked": None,  # "the broker is blocking publishers: memory alarm" while connection.blocked holds
        }
        self._logged_reason: str | None = None  # the last reason logged: one line per change, not per attempt

    # ----------------------------------------------------------------- public API
    @property
    def status(self) -> dict[str, Any]:
        """A copy of the current status: ``connected``, ``state``, redacted ``url``, ``server_version``..."""
        return dict(self._status)

    @property
    def connected(self) -> bool:
        return bool(self._status["connected"])

    @property
    def blocked(self) -> str | None:
        """Why the broker blocks this connection's publishes (``connection.blocked``), or None."""
        return self._status["blocked"]

    def start(self) -> BrokerLink:
        """Start the owner (a thread, or a greenlet under gevent's patching)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"broker-link:{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the owner."""
        self._stopping.set()
        self._wake.set()
        conn = self._connection
        if conn is not None:
            self._drop_if_blocked(conn)
            with contextlib.suppress(Exception):  # the connection may already be gone
                conn.add_callback_threadsafe(lambda: None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or ``timeout`` seconds pass (False)."""
        return self._connected_event.wait(timeout)

    def call(self, fn: Callable[[BlockingChannel], T], timeout: float = 10.0) -> T:
        """Run ``fn(channel)`` in the owner and return its result.

        A broker error closes only the channel: it is raised as :class:`BrokerError` and the next call gets a
        fresh channel. Raises :class:`BrokerUnavailable` at once while the broker is unreachable; right after
        :meth:`start`, while the first connection is still being made, it waits for it up to ``min(timeout, 5)``
        seconds rather than fail a request that came a moment too early.
        """
        if threading.get_ident() == self._owner_ident:
            return self._run_job(fn)
        if self._status["state"] == CONNECTING:  # just started: the first connection is on its way
            self._connected_event.wait(min(timeout, 5.0))
        conn = self._connection
        if conn is None or not self.connected:
            raise BrokerUnavailable(self._unavailable_text())
        future: Future = Future()
        with self._jobs_lock:
            self._jobs.append((fn, future))
        try:
            conn.add_callback_threadsafe(self._drain_jobs)
        except Exception as exc:
            raise BrokerUnavailable(self._unavailable_text()) from exc
        try:
            return future.result(timeout)
        except FutureTimeout as exc:
            future.cancel()
            raise BrokerUnavailable(f"the broker did not answer within {timeout:g} s") from exc

    # ----------------------------------------------------------------- owner side
    def _unavailable_text(self) -> str:
        error = self._status.get("error")
        base = f"broker {self._status['url']} is {self._status['state']}"
        return f"{base}: {error}" if error else base

    def _set_status(self, **changes: Any) -> None:
        before = (self._status["state"], self._status["connected"], self._status["error"], self._status["blocked"])
        if "state" in changes and changes["state"] != self._status["state"]:
            changes["since"] = time.time()
        self._status.update(changes)
        after = (self._status["state"], self._status["connected"], self._status["error"], self._status["blocked"])
        if before != after and self._on_status is not None:
            try:
                self._on_status(self.status)
            except Exception:
                log.exception("status callback failed")

    def _run(self) -> None:
        self._owner_ident = threading.get_ident()
        backoff = self._backoff_initial
        first = True
        while not self._stopping.is_set():
            if not first:
                self._set_status(state=RECONNECTING)
            attempts = self._status["attempts"] + 1
            self._status["attempts"] = attempts
            try:
                conn = pika.BlockingConnection(self._params)
            except Exception as exc:
                self._connect_failed(exc, backoff, DOWN if first else RECONNECTING)
                first = False
                self._wake.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            first = False
            backoff = self._backoff_initial
            self._connection = conn
            self._channel = None
            try:
                self._serve(conn)
            except CONNECTION_LOST as exc:
                reason = describe_error(exc, self.url)
                self._fail_pending(BrokerUnavailable(f"connection lost: {reason}"))
                self._connected_event.clear()
                if not self._stopping.is_set():
                    self._logged_reason = f"connection lost: {reason}"
                    log.warning("%s: connection lost: %s; reconnecting", self.name, reason)
                    log.debug("%s: connection lost", self.name, exc_info=exc)
                    self._set_status(
                        connected=False,
                        state=DOWN,
                        error=reason,
                        retry_at=time.time() + self._backoff_initial,
                        blocked=None,  # that connection is gone; a new one is not blocked until it publishes
                    )
                    self._wake.wait(self._backoff_initial)
            finally:
                self._connection = None
                self._channel = None
                if conn.is_open:
                    self._close_connection(conn)
        self._connected_event.clear()
        self._fail_pending(BrokerUnavailable("the broker link was stopped"))
        self._set_status(connected=False, state=STOPPED, error=None)

    def _watch_blocking(self, conn: pika.BlockingConnection) -> None:
        """Follow ``connection.blocked`` / ``unblocked`` as the frames arrive (on pika's connection itself, so it is
        known even while the owner waits inside a publish that the alarm holds)."""
        impl = conn._impl
        impl.add_on_connection_blocked_callback(
            lambda _conn, frame: self._set_status(blocked=blocked_text(getattr(frame.method, "reason", None)))
        )
        impl.add_on_connection_unblocked_callback(lambda _conn, _frame: self._set_status(blocked=None))

    def _drop_if_blocked(self, conn: pika.BlockingConnection) -> None:
        """Stopping while blocked: the owner may be waiting inside a publish the alarm holds, and a close would
        wait for the alarm too; drop the socket from pika's own loop, which runs even during that wait."""
        if not self._status["blocked"]:
            return
        impl = conn._impl
        with contextlib.suppress(Exception):
            impl.ioloop.add_callback_threadsafe(
                lambda: impl._terminate_stream(pex.ConnectionBlockedTimeout("stopped while the broker blocked it"))
            )

    def _close_connection(self, conn: pika.BlockingConnection) -> None:
        """Close on the way out. A blocked connection never gets its close-ok (the broker reads nothing from it
        until the alarm clears), so it is dropped at the socket instead of waiting."""
        if self._status["blocked"]:
            with contextlib.suppress(Exception):
                conn._impl._terminate_stream(pex.ConnectionBlockedTimeout("closed while the broker blocked it"))
                conn.process_data_events(time_limit=0)
            self._set_status(blocked=None)
            return
        with contextlib.suppress(Exception):  # best effort on the way out
            conn.close()

    def _connect_failed(self, exc: BaseException, backoff: float, state: str) -> None:
        """A failed attempt: the plain reason in the status, and in the log once per change of reason (each
        attempt, with pika's traceback, at debug level only)."""
        reason = describe_error(exc, self.url)
        retry_at = time.time() + backoff
        self._set_status(connected=False, state=state, error=reason, retry_at=retry_at)
        if reason != self._logged_reason:
            self._logged_reason = reason
            log.warning(
                "%s: cannot connect to %s: %s; next retry at %s, then every %g s at most until it answers",
                self.name,
                self._status["url"],
                reason,
                time.strftime("%H:%M:%S", time.localtime(retry_at)),
                self._backoff_max,
            )
        log.debug("%s: attempt %d failed: %s", self.name, self._status["attempts"], reason, exc_info=exc)

    def _serve(self, conn: pika.BlockingConnection) -> None:
        self._status["blocked"] = None  # a new connection is not blocked until it publishes during an alarm
        self._watch_blocking(conn)
        version = conn._impl.server_properties.get("version")
        if isinstance(version, bytes):
            version = version.decode("utf-8", "replace")
        if self._on_connected is not None:
            self._on_connected(conn)
        self._status["attempts"] = 0
        self._set_status(connected=True, state=CONNECTED, error=None, server_version=version, retry_at=None)
        self._connected_event.set()
        self._logged_reason = None
        log.info("%s: connected to %s (RabbitMQ %s)", self.name, self._status["url"], version)
        while not self._stopping.is_set():
            conn.process_data_events(time_limit=self._pump_interval)
            self._drain_jobs()

    def _drain_jobs(self) -> None:
        while True:
            with self._jobs_lock:
                if not self._jobs:
                    return
                fn, future = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._run_job(fn))
            except CONNECTION_LOST as exc:
                future.set_exception(BrokerUnavailable(f"connection lost: {describe_error(exc)}"))
                raise
            except BaseException as exc:
                future.set_exception(exc)

    def _run_job(self, fn: Callable[[BlockingChannel], T]) -> T:
        channel = self._channel
        if channel is None or not channel.is_open:
            if self._connection is None:
                raise BrokerUnavailable(self._unavailable_text())
            channel = self._channel = self._connection.channel()
        try:
            return fn(channel)
        except pex.ChannelClosedByBroker as exc:
            self._channel = None
            raise BrokerError.from_pika(exc) from None

    def _fail_pending(self, error: Exception) -> None:
        with self._jobs_lock:
            pending = list(self._jobs)
            self._jobs.clear()
        for _, future in pending:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)
