"""Queue checks of the RPC client: does the request queue exist, and how many servers consume from it?

A passive ``queue.declare`` answers both. The checks run one at a time on a channel of their own, in the client's
owner: a check of a missing queue closes its channel (404) and a new one is opened for the next. A check the broker
does not answer within ``timeout`` seconds (a name it rewrote, say) fails, and its channel is abandoned and
replaced, since pika would queue every later declare behind the unanswered one; :attr:`QueueChecks.since` says
how long the running check has waited (the client reports ``stuck`` from it), and stays set until the replacement
channel opens. If that does not open within ``timeout`` either, the connection itself is not answering: its socket
is shut, the runner reconnects, and the waiting checks end as ``broker_down``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pika

from rabbit.async_connection import AsyncConnection
from rabbit.owners import abort_socket

log = logging.getLogger("rabbit.rpc")

PROBE_TIMEOUT_S = 5.0  # a passive queue declare not answered by then: the check channel is replaced

# on_count(consumers, error): consumers is None when the queue does not exist; error is None, "broker_down" or a text
OnCount = Callable[[int | None, str | None], None]


class QueueChecks:
    """Passive declares, one at a time, on the check channel of ``runner``'s connection (owner thread only)."""

    def __init__(self, runner: AsyncConnection, name: str, timeout: float = PROBE_TIMEOUT_S) -> None:
        self._runner = runner
        self.name = name
        self.timeout = timeout
        self.channel: Any = None
        self._waiting: deque[tuple[str, OnCount]] = deque()
        self._busy = False
        self.since: float | None = None  # monotonic time the running check was sent
        self._timer: Any = None
        self.recoveries = 0  # check channels replaced after an unanswered check

    def open(self, connection: pika.SelectConnection) -> None:
        """Open the check channel on a new connection."""
        connection.channel(on_open_callback=self._on_channel_open)

    def check(self, queue: str, on_count: OnCount) -> None:
        """Passive declare of ``queue``, after those already waiting: ``on_count(consumers|None, error)``."""
        conn = self._runner.connection
        if conn is None or not conn.is_open:
            on_count(None, "broker_down")
            return
        self._waiting.append((queue, on_count))
        self._next()

    def connection_lost(self) -> None:
        """The connection is gone: its channel with it, and every check waiting ends as ``broker_down``."""
        self.channel = None
        waiting = list(self._waiting)
        self._waiting.clear()
        self._busy = False
        self.since = None
        self._timer = None  # timers die with their ioloop
        for _, on_count in waiting:
            on_count(None, "broker_down")

    def _reopen(self) -> None:
        conn = self._runner.connection
        if conn is not None and conn.is_open and not self._runner.should_stop:
            conn.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Any) -> None:
        if not self._busy and self._timer is not None:  # the replacement of a stuck channel: no longer stuck
            self._done()
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        self._next()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self.channel:
            return
        self.channel = None
        if self._busy and self._waiting:  # the head check's queue does not exist (404)
            _, on_count = self._waiting.popleft()
            self._done()
            code = getattr(reason, "reply_code", 0)
            on_count(None, None if code == 404 else f"queue check failed: {reason}")
        self._reopen()

    def _next(self) -> None:
        if self._busy or not self._waiting or self.channel is None or not self.channel.is_open:
            return
        queue, _ = self._waiting[0]
        self._busy = True
        self.since = time.monotonic()
        self.channel.queue_declare(queue, passive=True, callback=self._on_answer)
        self._timer = self._runner.call_later(self.timeout, self._on_stuck)

    def _done(self) -> None:
        self._busy = False
        self.since = None
        self._runner.remove_timeout(self._timer)
        self._timer = None

    def _on_stuck(self) -> None:
        """The broker did not answer the head check in time: fail it, abandon its channel (pika would queue
        every later declare behind the unanswered one) and open a new one for the checks that wait."""
        self._timer = None
        if not self._busy or not self._waiting:
            return
        queue, on_count = self._waiting.popleft()
        stuck_since = self.since
        self._done()
        self.recoveries += 1
        channel, self.channel = self.channel, None  # its close callback is now ignored
        log.warning("%s: no answer to the check of queue %r: replacing the check channel", self.name, queue)
        with contextlib.suppress(Exception):  # queued behind the unanswered declare: it may never go out
            channel.close()
        on_count(None, f"the broker did not answer the check of queue {queue!r} within {self.timeout:g} s")
        self.since = stuck_since  # still stuck until the replacement channel opens
        self._timer = self._runner.call_later(self.timeout, self._on_reopen_stuck)
        self._reopen()

    def _on_reopen_stuck(self) -> None:
        """No replacement check channel within ``timeout`` either: the connection does not answer. Shut its socket
        (the runner reconnects; :meth:`connection_lost` ends the waiting checks as ``broker_down``)."""
        self._timer = None
        if self.channel is not None:
            return
        log.warning("%s: no new check channel within %g s: reconnecting", self.name, self.timeout)
        if not abort_socket(self._runner.connection):
            self.since = None

    def _on_answer(self, frame: Any) -> None:
        self._done()
        _, on_count = self._waiting.popleft()
        on_count(frame.method.consumer_count, None)
        self._next()
