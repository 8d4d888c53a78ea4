"""The RPC area: fib servers, the lab's correlating client and its bursts, and the inspector of other applications'
RPC (round trips paired from the firehose trace of the watch area).

Events (high rate): ``rpc_request``, ``rpc_reply``, ``rpc_timeout``, ``rpc_error``, ``rpc_orphan``,
``rpc_burst_progress``, ``rpc_roundtrip``; (low rate) ``rpc_servers``; :meth:`RpcService.state_events` gives a new
listener ``rpc_state`` (the client status, the servers and the recent timeline).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from lab.events import EventSink, Spawn, start_thread
from lab.limits import Slots
from lab.settings import Settings
from lab.watch import WatchService
from rabbit.errors import InvalidInput, LabError
from rabbit.rpc import RpcClient
from rabbit.rpc_inspector import RpcInspector
from rabbit.rpc_servers import ServerPool

log = logging.getLogger(__name__)

TIMELINE_EVENTS = ("rpc_request", "rpc_reply", "rpc_timeout", "rpc_error", "rpc_orphan")


class RpcService:
    """The RPC client, the fib servers and the inspector of one lab."""

    def __init__(
        self, settings: Settings, events: EventSink, *, watch: WatchService | None = None, spawn: Spawn = start_thread
    ) -> None:
        """``watch``: the firehose the inspector listens to (None: no inspection of other applications)."""
        self.settings = settings
        self.events = events
        self.watch = watch
        self.spawn = spawn
        self.timeline: deque[tuple[str, dict[str, Any]]] = deque(maxlen=200)
        self.client = RpcClient(settings.amqp_url, on_event=self._on_client_event, name="rabbitlens-rpc")
        self.servers = ServerPool(
            settings.amqp_url,
            on_event=events.emit,
            max_servers=settings.rpc_max_servers,
            keep_ended=settings.rpc_kept_servers,
        )
        self.inspector = RpcInspector()
        self._inspector_lock = threading.Lock()
        self.burst_slots = Slots(
            settings.rpc_max_bursts,
            "at most {limit} bursts at once (RABBITLENS_RPC_MAX_BURSTS): wait for one to end, or cancel one",
        )
        self.burst_owners: dict[str, str] = {}  # burst id -> the owner (a page's session) whose end cancels it
        self._stopping = threading.Event()
        self.inspecting = False

    def start(self) -> None:
        self.client.start()
        if self.watch is not None:
            self.watch.add_trace_listener(self._on_trace)
            self.inspecting = True
            self.spawn(self._expire_loop)

    def stop(self) -> None:
        self._stopping.set()
        if self.watch is not None and self.inspecting:
            self.watch.remove_trace_listener(self._on_trace)
        self.servers.stop_all(kill=True)
        self.client.stop()

    # ----------------------------------------------------------------- events
    def _on_client_event(self, name: str, payload: dict[str, Any]) -> None:
        if name == "rpc_client_status":  # heard by no page: the status travels in rpc_state and GET /api/rpc/status
            return
        if name in TIMELINE_EVENTS:
            self.timeline.append((name, payload))
        self.events.stream(name, payload)

    def record_refused(self, payload: dict[str, Any]) -> None:
        """A call refused before anything was sent: in the timeline and the round-trip list, with its reason."""
        self.timeline.append(("rpc_refused", payload))
        self.events.stream("rpc_refused", payload)

    def _on_trace(self, event: dict[str, Any]) -> None:
        with self._inspector_lock:
            trips = self.inspector.feed(event)
        for trip in trips:
            self.events.stream("rpc_roundtrip", trip)

    def _expire_loop(self) -> None:
        while not self._stopping.wait(1.0):
            with self._inspector_lock:
                trips = self.inspector.expire(time.time())
            for trip in trips:
                self.events.stream("rpc_roundtrip", trip)

    def inspect(self) -> dict[str, Any]:
        with self._inspector_lock:
            snapshot = self.inspector.snapshot(time.time())
        trace = None
        if self.inspecting and self.watch is not None:
            try:
                trace = self.watch.trace_status(check=False)
            except Exception as exc:  # the watch area reports its own problems; ours is only to show them
                trace = {"enabled": False, "available": False, "reason": str(exc)}
        reason = None
        if not self.inspecting:
            reason = "the watch service (firehose trace) is not available in this lab"
        elif trace is not None and not trace.get("enabled"):
            reason = trace.get("reason") or "the firehose trace is off: turn it on to see other applications' RPC"
        return {"inspecting": self.inspecting and reason is None, "reason": reason, "trace": trace, **snapshot}

    def status(self) -> dict[str, Any]:
        """The client's connection and its recent calls."""
        return {"client": self.client.status, "timeline": self._timeline()}

    def state_events(self) -> list[tuple[str, Any]]:
        """What a new listener is sent to catch up: ``rpc_state``."""
        state = {"client": self.client.status, "servers": self.servers.list(), "timeline": self._timeline()}
        return [("rpc_state", state)]

    def _timeline(self) -> list[dict[str, Any]]:
        return [{"event": name, "data": data} for name, data in list(self.timeline)]

    # ----------------------------------------------------------------- calls and servers
    def call(self, n: int, *, queue: str, timeout_s: float, reply_mode: str, expire: bool) -> dict[str, Any]:
        return self.client.call(n, queue=queue, timeout_s=timeout_s, reply_mode=reply_mode, expire=expire)

    def start_servers(self, count: int, **knobs: Any) -> list[dict[str, Any]]:
        """``count`` fib server processes with the knobs of :meth:`ServerPool.start` (queue, prefetch, work_ms...)."""
        return self.servers.start(count, **knobs)

    def list_servers(self) -> list[dict[str, Any]]:
        return self.servers.list()

    def stop_server(self, server_id: str, *, kill: bool) -> dict[str, Any]:
        return self.servers.stop(server_id, kill=kill)

    # ----------------------------------------------------------------- bursts
    def burst(
        self,
        *,
        ns: list[int] | None = None,
        n: int | None = None,
        calls: int | None = None,
        concurrency: int = 1,
        queue: str = "rpc_queue",
        reply_mode: str = "callback_queue",
        timeout_s: float = 5.0,
        expire: bool = True,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """``calls`` calls (default: one per n of ``ns``, or 100 of the one ``n``), cycling through ``ns`` (or
        ``n``), ``concurrency`` in flight; the summary when it ends. ``owner`` (a page's session):
        :meth:`owner_gone` with it cancels the burst."""
        if (ns is None) == (n is None):
            raise InvalidInput("give either ns (a list) or n, not both and not neither")
        if calls is None:
            calls = len(ns) if ns is not None else 100
        ns = ns if ns is not None else [n]
        with self.burst_slots.hold():
            burst_id = self.client.new_burst_id()
            if owner is not None:
                self.burst_owners[burst_id] = owner
            try:
                return self.client.burst(
                    ns,
                    calls=calls,
                    concurrency=concurrency,
                    queue=queue,
                    reply_mode=reply_mode,
                    timeout_s=timeout_s,
                    on_progress=lambda progress: self.events.stream("rpc_burst_progress", progress),
                    burst_id=burst_id,
                    max_s=self.settings.rpc_burst_max_s,
                    expire=expire,
                )
            finally:
                self.burst_owners.pop(burst_id, None)

    def running_bursts(self) -> list[dict[str, Any]]:
        """The running bursts; ``cancel_on_disconnect``: a page's session ends it (its sid is not shown)."""
        return [{**b, "cancel_on_disconnect": b["burst_id"] in self.burst_owners} for b in self.client.running_bursts()]

    def cancel_burst(self, burst_id: str, reason: str) -> dict[str, Any]:
        progress = self.client.cancel_burst(burst_id, reason)
        if progress is None:
            raise LabError(f"no running burst {burst_id!r}", code="NOT_FOUND")
        return progress

    def owner_gone(self, owner: str) -> None:
        """The owner of some bursts went (a page's Socket.IO session ended): cancel them."""
        for burst_id, who in list(self.burst_owners.items()):
            if who == owner:
                reason = "the page that started it went away (its Socket.IO session ended)"
                self.client.cancel_burst(burst_id, reason, wait=False)
