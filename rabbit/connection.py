"""One pika connection, one owner: the ``BrokerLink``.

pika connections and channels are not thread-safe. A ``BrokerLink`` owns one ``BlockingConnection`` in one
thread (a greenlet when gevent has patched ``threading``): that owner connects, keeps the connection pumped
(heartbeats, consumer callbacks), reconnects with backoff when the broker goes away, and runs work that
other threads or greenlets hand it through :meth:`BrokerLink.call`. Every state change is reported to an
injected ``on_status`` callback.

An owner that does not come back is replaced, not waited for: when a handed-in job is still not done at its
timeout (a blocking pika call waiting for a reply that never comes, say), the link abandons that owner, shuts its
socket down from outside (which makes the stuck pika call raise, so the old owner ends and its connection goes) and
starts a fresh owner with a fresh connection at once. While an owner is busy past ``stuck_after`` seconds,
:attr:`BrokerLink.status` says ``stuck`` (health reports it).

This module (blocking connections) and :mod:`rabbit.async_connection` (pika's asynchronous ``SelectConnection``,
for the RPC client, the fib server and publish bursts) are the only ones that create pika connections for the app,
so a later move to pika 1.5's thread-safe connection class stays small. What both share (parameters, plain
reasons, :func:`abort_socket`, the registry of owners) lives in :mod:`rabbit.owners`.
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

from rabbit.errors import BrokerBlocked, BrokerError, BrokerUnavailable
from rabbit.owners import (
    CONNECTION_LOST,
    STUCK_AFTER_S,
    abort_socket,
    connection_parameters,
    describe_error,
    register_owner,
    stuck_links,
)
from rabbit.reasons import blocked_text, quiet_pika_logs
from rabbit.urls import redact_url
from rabbit.validation import DEFAULT_FRAME_MAX

log = logging.getLogger(__name__)
quiet_pika_logs()  # pika's six ERROR lines and a traceback per failed attempt go to debug; the lab says it once

__all__ = [
    "CONNECTED",
    "CONNECTING",
    "CONNECTION_LOST",
    "DOWN",
    "RECONNECTING",
    "STOPPED",
    "STUCK_AFTER_S",
    "BrokerLink",
    "abort_socket",
    "connection_parameters",
    "describe_error",
    "register_owner",
    "stuck_links",
]

T = TypeVar("T")

CONNECTED = "connected"
CONNECTING = "connecting"
RECONNECTING = "reconnecting"
DOWN = "down"
STOPPED = "stopped"

BLOCKED_CONNECTION_TIMEOUT_S = 30.0  # pika closes a connection blocked longer than this


class _Owner:
    """One owner (thread or greenlet) and its connection. A link replaces an owner that is stuck; the old one
    finishes on its own and must no longer touch the link's state."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.ident: int | None = None
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None
        self.busy_since: float | None = None  # monotonic time the running job started


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
        stuck_after: float = STUCK_AFTER_S,
    ) -> None:
        self.url = url
        self.name = name
        self._on_status = on_status
        self._on_connected = on_connected
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._pump_interval = pump_interval
        self._stuck_after = stuck_after
        params = connection_parameters(url, name, heartbeat=heartbeat)
        params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_S
        self._params = params
        # (fn, future, monotonic time handed in)
        self._jobs: deque[tuple[Callable[[BlockingChannel], Any], Future, float]] = deque()
        self._jobs_lock = threading.Lock()
        self._stopping = threading.Event()
        self._connected_event = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner = _Owner(0)
        self._recover_lock = threading.Lock()
        self._recovering = False
        self.recoveries = 0
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
            "stuck": False,
            "recoveries": 0,
        }
        self._logged_reason: str | None = None  # the last reason logged: one line per change, not per attempt
        register_owner(self)

    # ----------------------------------------------------------------- public API
    @property
    def status(self) -> dict[str, Any]:
        """A copy of the current status: ``connected``, ``state``, redacted ``url``, ``server_version``...,
        ``stuck`` (the owner has been busy past ``stuck_after`` seconds) and ``recoveries`` (stuck owners
        replaced so far)."""
        status = dict(self._status)
        stuck_for = self.stuck_for()
        status["stuck"] = stuck_for is not None
        if stuck_for is not None:
            status["stuck_for_s"] = round(stuck_for, 1)
        return status

    def stuck_for(self) -> float | None:
        """Seconds the owner has been stuck (a job running, or waiting to be picked up, longer than
        ``stuck_after``), or None when it is not."""
        now = time.monotonic()
        busy = self._owner.busy_since
        with self._jobs_lock:
            oldest = self._jobs[0][2] if self._jobs else None
        ages = [now - t for t in (busy, oldest) if t is not None]
        age = max(ages, default=0.0)
        if self._status["blocked"]:  # waiting for the broker's alarm to clear, not stuck (health says blocked)
            return None
        return age if age > self._stuck_after else None

    @property
    def frame_max(self) -> int:
        """The frame size the current connection negotiated (RabbitMQ's default until the first connection)."""
        conn = self._owner.connection
        try:
            return int(conn._impl.params.frame_max) if conn is not None else DEFAULT_FRAME_MAX
        except (AttributeError, TypeError, ValueError):
            return DEFAULT_FRAME_MAX

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
            self._start_owner(self._owner)
        return self

    def _start_owner(self, owner: _Owner) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(owner,), name=f"broker-link:{self.name}:{owner.generation}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the owner."""
        self._stopping.set()
        self._wake.set()
        conn = self._owner.connection
        if conn is not None:
            self._drop_if_blocked(conn)
            with contextlib.suppress(Exception):  # the connection may already be gone
                conn.add_callback_threadsafe(lambda: None)
            if self.stuck_for() is not None:  # a stuck owner would not see the wake-up: unblock it
                abort_socket(conn)
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
        seconds rather than fail a request that came a moment too early (and the same while a stuck owner is
        being replaced).

        A job not done within ``timeout`` raises :class:`BrokerUnavailable` *and* replaces the owner (see
        :meth:`recover`): whatever held it, the next call gets a fresh connection instead of waiting behind it.
        While the broker blocks the connection (a memory or disk alarm) the wait is the alarm's, not a stuck
        owner's: it raises :class:`BrokerBlocked` with the reason and keeps the connection.
        """
        owner = self._owner
        if threading.get_ident() == owner.ident:
            return self._run_job(fn, owner)
        if self._status["state"] == CONNECTING or self._recovering:  # a connection is on its way
            self._connected_event.wait(min(timeout, 5.0))
        owner = self._owner
        conn = owner.connection
        if conn is None or not self.connected:
            raise BrokerUnavailable(self._unavailable_text())
        future: Future = Future()
        with self._jobs_lock:
            self._jobs.append((fn, future, time.monotonic()))
        try:
            conn.add_callback_threadsafe(lambda: self._drain_jobs(owner))
        except Exception as exc:
            raise BrokerUnavailable(self._unavailable_text()) from exc
        try:
            return future.result(timeout)
        except FutureTimeout as exc:
            future.cancel()
            blocked = self._status["blocked"]
            if blocked:
                # The owner waits for an alarm to clear (a publish that met it waits for its confirm; pika gives
                # up after blocked_connection_timeout): not stuck, so the connection stays and that message may
                # still go out. ``pending`` is the job, for whoever wants its outcome once it ends.
                error = BrokerBlocked(f"{blocked}; the broker did not answer within {timeout:g} s")
                error.pending = future
                raise error from exc
            reason = f"the broker did not answer within {timeout:g} s"
            self.recover(reason, owner)
            raise BrokerUnavailable(
                f"{reason}; the lab dropped that connection and opens a new one (try again)"
            ) from exc

    def recover(self, reason: str, owner: _Owner | None = None) -> bool:
        """Replace a stuck owner: abandon it, shut its socket down so a blocked pika call
        in it raises, and start a new owner with a new connection at once. ``owner`` is the one the caller saw
        stuck: if it was replaced already, nothing happens (False)."""
        with self._recover_lock:
            old = self._owner
            if self._stopping.is_set() or (owner is not None and owner is not old):
                return False
            self._recovering = True
            self._owner = _Owner(old.generation + 1)
            self.recoveries += 1
            self._status["recoveries"] = self.recoveries
        log.warning("%s: owner stuck (%s): dropping its connection and reconnecting", self.name, reason)
        self._connected_event.clear()  # jobs already handed in stay queued: the new owner runs them
        self._set_status(connected=False, state=RECONNECTING, error=f"recovering: {reason}")
        abort_socket(old.connection)
        self._start_owner(self._owner)
        return True

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

    def _current(self, owner: _Owner) -> bool:
        """Whether ``owner`` still is the link's owner (not replaced, link not stopping)."""
        return owner is self._owner and not self._stopping.is_set()

    def _run(self, owner: _Owner) -> None:
        owner.ident = threading.get_ident()
        backoff = self._backoff_initial
        first = owner.generation == 0
        while self._current(owner):
            if not first:
                self._set_status(state=RECONNECTING)
            attempts = self._status["attempts"] + 1
            self._status["attempts"] = attempts
            try:
                conn = pika.BlockingConnection(self._params)
            except Exception as exc:
                if not self._current(owner):
                    break
                self._recovering = False
                self._connect_failed(exc, backoff, DOWN if first else RECONNECTING)
                first = False
                self._wake.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            first = False
            backoff = self._backoff_initial
            owner.connection = conn
            owner.channel = None
            try:
                if self._current(owner):
                    self._serve(conn, owner)
            except CONNECTION_LOST as exc:
                if self._current(owner):
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
                owner.connection = None
                owner.channel = None
                owner.busy_since = None
                if conn.is_open:
                    self._close_connection(conn)
        if owner is not self._owner:  # replaced: the new owner carries on, this one just ends
            log.info("%s: an abandoned owner (generation %d) ended", self.name, owner.generation)
            return
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

    def _serve(self, conn: pika.BlockingConnection, owner: _Owner) -> None:
        self._status["blocked"] = None  # a new connection is not blocked until it publishes during an alarm
        self._watch_blocking(conn)
        version = conn._impl.server_properties.get("version")
        if isinstance(version, bytes):
            version = version.decode("utf-8", "replace")
        if self._on_connected is not None:
            owner.busy_since = time.monotonic()
            try:
                self._on_connected(conn)
            finally:
                owner.busy_since = None
        if not self._current(owner):
            return
        self._status["attempts"] = 0
        self._recovering = False
        self._set_status(connected=True, state=CONNECTED, error=None, server_version=version, retry_at=None)
        self._connected_event.set()
        self._logged_reason = None
        log.info("%s: connected to %s (RabbitMQ %s)", self.name, self._status["url"], version)
        while self._current(owner):
            conn.process_data_events(time_limit=self._pump_interval)
            self._drain_jobs(owner)

    def _drain_jobs(self, owner: _Owner) -> None:
        while self._current(owner):
            with self._jobs_lock:
                if not self._jobs:
                    return
                fn, future, _ = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._run_job(fn, owner))
            except CONNECTION_LOST as exc:
                future.set_exception(BrokerUnavailable(f"connection lost: {describe_error(exc)}"))
                raise
            except BaseException as exc:
                future.set_exception(exc)

    def _run_job(self, fn: Callable[[BlockingChannel], T], owner: _Owner) -> T:
        channel = owner.channel
        if channel is None or not channel.is_open:
            if owner.connection is None:
                raise BrokerUnavailable(self._unavailable_text())
            channel = owner.channel = owner.connection.channel()
        outer = owner.busy_since is None
        if outer:
            owner.busy_since = time.monotonic()
        try:
            return fn(channel)
        except pex.ChannelClosedByBroker as exc:
            owner.channel = None
            raise BrokerError.from_pika(exc) from None
        finally:
            if outer:
                owner.busy_since = None

    def _fail_pending(self, error: Exception) -> None:
        with self._jobs_lock:
            pending = list(self._jobs)
            self._jobs.clear()
        for _, future, _ in pending:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)
