"""One asynchronous connection, one owner: the runner behind every ``SelectConnection`` of the lab.

The RPC client, the fib server and publish bursts each own a pika ``SelectConnection`` and run its ioloop in their
own thread (a greenlet under gevent: waiting costs no CPU). :class:`AsyncConnection` is that loop, written once,
after pika's asynchronous consumer example: open the connection, run its ioloop until the connection ends, free
the ioloop (each has its own poller and waker sockets), and either reconnect with backoff (doubling up to a
ceiling, back to the start once the owner said it was ready) or end. An exception that escapes a callback ends
the ioloop: the socket is shut so the old connection never stays open behind the next one.

The owner hears each change through hooks, the way kombu's ``ConsumerMixin`` does (:class:`ConnectionHooks`:
``on_connection_open``, ``on_connection_open_error``, ``on_connection_closed``, ``on_blocked``, ``on_unblocked``,
``on_closed``, ``on_reconnecting``), with the reason in plain words (:func:`rabbit.owners.describe_error`). A
reconnecting runner logs one line per change of reason, never one per attempt; a one-shot runner (a burst) leaves
the telling to its owner, which raises the reason to its caller.

``connection.blocked`` (a memory or disk alarm) is followed on every connection: while it holds, :meth:`close`
drops the socket instead of waiting for a close-ok the broker will not send until the alarm clears.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions as pex

from rabbit.owners import abort_socket, connection_parameters, describe_error
from rabbit.reasons import blocked_text, quiet_pika_logs
from rabbit.urls import redact_url

log = logging.getLogger(__name__)
quiet_pika_logs()

RETRY_POLL_S = 0.05  # while waiting to reconnect: how often the stop flag (and on_retry_wait) is looked at


class ConnectionHooks:
    """What the owner of an :class:`AsyncConnection` hears, all in the ioloop's thread. Override what you need."""

    def on_connection_open(self, connection: pika.SelectConnection) -> None:
        """The connection is open: open channels, declare what is yours."""

    def on_connection_open_error(self, reason: str, error: BaseException) -> None:
        """An attempt failed (``reason`` in plain words); the runner retries after its backoff unless stopped."""

    def on_connection_closed(self, reason: str, error: BaseException) -> None:
        """An open connection ended (closed by us, by the broker, or lost); its channels are gone."""

    def on_blocked(self, reason: str) -> None:
        """The broker blocks this connection's publishes (``reason``: "the broker is blocking publishers: ...")."""

    def on_unblocked(self) -> None:
        """The alarm cleared."""

    def on_closed(self) -> None:
        """The ioloop of one connection has ended (timers and channels with it); ``connection`` is None now."""

    def on_reconnecting(self, delay: float) -> None:
        """The runner waits ``delay`` seconds, then opens a new connection."""

    def on_retry_wait(self) -> None:
        """Called every ``RETRY_POLL_S`` while waiting to reconnect (a parent-process check, say)."""


class AsyncConnection:
    """Runs ``SelectConnection``s to ``url`` one after the other in the calling thread, reporting to ``hooks``.

    ``run()`` returns once :attr:`should_stop` is set and the connection has ended, or, with ``reconnect=False``,
    when the one connection ends. ``should_stop`` is a plain attribute, so a signal handler may set it.
    """

    def __init__(
        self,
        url: str,
        hooks: ConnectionHooks,
        *,
        name: str,
        label: str | None = None,
        heartbeat: int | None = None,
        reconnect: bool = True,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
    ) -> None:
        self.url = url
        self.hooks = hooks
        self.label = label or name  # the owner's name in log lines
        self.params = connection_parameters(url, name, heartbeat=heartbeat)
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.backoff = backoff_initial  # the wait before the next attempt
        self.connection: pika.SelectConnection | None = None
        self.should_stop = False
        self.blocked: str | None = None  # why the broker blocks the current connection, or None
        self._logged: str | None = None  # the last reason logged: one line per change, not per attempt
        self._wake = threading.Event()

    # ------------------------------------------------------------------ any thread
    def add_callback_threadsafe(self, fn: Callable[[], None]) -> bool:
        """Have the ioloop run ``fn`` soon; False when there is no connection to run it on."""
        conn = self.connection
        if conn is None:
            return False
        try:
            conn.ioloop.add_callback_threadsafe(fn)
        except Exception:  # its ioloop is closing
            return False
        return True

    def stop(self) -> None:
        """Stop reconnecting and close the connection (from any thread; not from a signal handler: it takes a
        lock, so there set :attr:`should_stop` and hand :meth:`close` over yourself)."""
        self.should_stop = True
        self._wake.set()
        self.add_callback_threadsafe(self.close)

    def abort(self) -> bool:
        """Shut the current connection's socket from any thread (:func:`rabbit.owners.abort_socket`)."""
        return abort_socket(self.connection)

    # ------------------------------------------------------------------ the owner's thread
    def run(self) -> None:
        """Connect, run, reconnect with backoff until stopped (or once, without ``reconnect``)."""
        self.backoff = self.backoff_initial
        while not self.should_stop:
            self._run_one()
            if self.should_stop or not self.reconnect:
                break
            self.hooks.on_reconnecting(self.backoff)
            self._wait(self.backoff)
            self.backoff = min(self.backoff * 2, self.backoff_max)

    def mark_ready(self) -> None:
        """The owner is set up on this connection: a later drop starts the backoff (and the log) over."""
        self.backoff = self.backoff_initial
        self._logged = None

    def call_later(self, delay: float, fn: Callable[[], None]) -> Any:
        """A timer on the current ioloop (None without a connection); timers die with their ioloop."""
        conn = self.connection
        return None if conn is None else conn.ioloop.call_later(delay, fn)

    def remove_timeout(self, timer: Any) -> None:
        conn = self.connection
        if conn is not None and timer is not None:
            with contextlib.suppress(Exception):
                conn.ioloop.remove_timeout(timer)

    def close(self) -> None:
        """Close the current connection: a close handshake, or the socket dropped while the broker blocks it."""
        conn = self.connection
        if conn is None:
            return
        if self.blocked and (conn.is_open or conn.is_closing):
            # The broker reads nothing from a blocked connection, so a close-ok would never come: drop the socket.
            conn._terminate_stream(pex.ConnectionBlockedTimeout("closed while the broker blocked it"))
        elif conn.is_open:
            conn.close()
        elif not conn.is_closing:
            conn.ioloop.stop()

    def _run_one(self) -> None:
        conn = pika.SelectConnection(
            self.params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )
        self.connection = conn
        self.blocked = None
        try:
            conn.ioloop.start()
        except Exception:
            abort_socket(conn)  # never leave the old connection open behind the new one
            if not self.reconnect:
                raise
            log.exception("%s: ioloop failed", self.label)
        finally:
            with contextlib.suppress(Exception):  # each SelectConnection has its own ioloop: free it
                conn.ioloop.close()
            self.connection = None
            self.blocked = None
            self.hooks.on_closed()

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.should_stop:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(left, RETRY_POLL_S))
            self.hooks.on_retry_wait()

    def _on_open(self, conn: pika.SelectConnection) -> None:
        conn.add_on_connection_blocked_callback(self._on_blocked)
        conn.add_on_connection_unblocked_callback(self._on_unblocked)
        self.hooks.on_connection_open(conn)

    def _on_blocked(self, _conn: pika.SelectConnection, frame: Any) -> None:
        self.blocked = blocked_text(getattr(frame.method, "reason", None))
        self.hooks.on_blocked(self.blocked)

    def _on_unblocked(self, _conn: pika.SelectConnection, _frame: Any) -> None:
        self.blocked = None
        self.hooks.on_unblocked()

    def _on_open_error(self, conn: pika.SelectConnection, error: BaseException) -> None:
        reason = describe_error(error, self.url)
        if self.reconnect and reason != self._logged:
            self._logged = reason
            log.warning(
                "%s: cannot connect to %s: %s; next retry in %.1f s, then every %g s at most",
                self.label,
                redact_url(self.url),
                reason,
                self.backoff,
                self.backoff_max,
            )
        log.debug("%s: attempt failed: %s", self.label, reason, exc_info=error)
        self.hooks.on_connection_open_error(reason, error)
        conn.ioloop.stop()

    def _on_closed(self, conn: pika.SelectConnection, error: BaseException) -> None:
        reason = describe_error(error, self.url)
        if self.reconnect and not self.should_stop:
            self._logged = reason
            log.warning("%s: connection closed: %s", self.label, reason)
        self.hooks.on_connection_closed(reason, error)
        conn.ioloop.stop()
