"""The RPC area: fib servers, the lab's correlating client, and the inspector of other applications' RPC.

Routes:
- ``POST /api/rpc/servers`` ``{"count", "prefetch", "work_ms", "queue", "max_n", "ack_delay_ms"}`` -> 201
  ``{"servers": [...]}``; ``GET /api/rpc/servers`` -> ``{"servers": [{id, pid, state, handled, errors,
  in_flight, ...}]}``; ``DELETE /api/rpc/servers/<id>`` (graceful) or ``?kill=1`` (SIGKILL mid-request).
- ``POST /api/rpc/call`` ``{"n", "queue", "timeout_s", "reply_mode"}`` -> ``{"correlation_id", "n", "result",
  "latency_ms", "reply_mode", "server", "queue"}``; errors ``timeout`` (504, with ``consumers``),
  ``server_error`` (502), ``invalid`` (400), ``BROKER_DOWN`` (503).
- ``POST /api/rpc/burst`` ``{"ns" | "n", "calls", "concurrency", "queue", "reply_mode", "timeout_s"}`` -> the
  summary; ``rpc_burst_progress`` events while it runs.
- ``GET /api/rpc/inspect``: round trips of every application seen in the firehose trace; ``GET /api/rpc/status``.

Socket.IO: ``rpc_request``, ``rpc_reply``, ``rpc_timeout``, ``rpc_error``, ``rpc_orphan``, ``rpc_burst_progress``,
``rpc_roundtrip`` (high rate, through the hub's batcher); ``rpc_servers``, ``rpc_client_status``, ``rpc_state``
(to each new client: the client status, the servers and the recent timeline).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Annotated, Any, Literal

from flask import Blueprint, Flask, request
from pydantic import Field, model_validator

from rabbit.errors import LabError
from rabbit.fib import DEFAULT_MAX_N
from rabbit.rpc import RpcClient
from rabbit.rpc_inspector import RpcInspector
from rabbit.rpc_servers import ServerPool
from web.api import ApiModel, api
from web.lab import Lab, current_lab

log = logging.getLogger(__name__)

bp = Blueprint("rpc", __name__)

# The client accepts any n a server might serve; the lab's servers refuse n above their own bound (server_error).
CLIENT_MAX_N = 1_000_000
MAX_CONCURRENT_BURSTS = 4
TIMELINE_EVENTS = ("rpc_request", "rpc_reply", "rpc_timeout", "rpc_error", "rpc_orphan")

QueueName = Annotated[str, Field(min_length=1, max_length=255, description="the request queue")]
N = Annotated[int, Field(strict=True, ge=0, le=CLIENT_MAX_N, description="fib(n) is asked for")]
ReplyMode = Literal["callback_queue", "direct_reply_to"]


class ServersIn(ApiModel):
    count: int = Field(default=1, ge=1, le=8, description="how many server processes to start")
    prefetch: int = Field(default=1, ge=1, le=1000, description="unacked requests each server holds at once")
    work_ms: float = Field(default=0, ge=0, le=60_000, description="simulated work per request, ms")
    queue: QueueName = "rpc_queue"
    max_n: int = Field(default=DEFAULT_MAX_N, ge=0, le=CLIENT_MAX_N, description="largest n the servers serve")
    ack_delay_ms: float = Field(
        default=0, ge=0, le=60_000, description="hold acks back after replying (a kill then shows duplicates)"
    )
    queue_durable: bool = Field(
        default=True,
        description="declare a missing queue durable (today's tutorials); false: transient (the older tutorials)",
    )
    queue_type: Literal["auto", "quorum", "classic"] = Field(
        default="auto",
        description="the type of a missing queue (auto: quorum where the broker has them); an existing one is "
        "used as it is",
    )


class CallIn(ApiModel):
    n: N
    queue: QueueName = "rpc_queue"
    timeout_s: float = Field(default=5, gt=0, le=120, description="give up after this many seconds")
    reply_mode: ReplyMode = "callback_queue"


class BurstIn(ApiModel):
    ns: list[N] | None = Field(default=None, min_length=1, max_length=10_000, description="the n of each call")
    n: N | None = Field(default=None, description="one n for every call (instead of ns)")
    calls: int | None = Field(default=None, ge=1, le=200_000, description="how many calls (default: len(ns) or 100)")
    concurrency: int = Field(default=1, ge=1, le=256, description="calls in flight at once")
    queue: QueueName = "rpc_queue"
    reply_mode: ReplyMode = "callback_queue"
    timeout_s: float = Field(default=5, gt=0, le=120)

    @model_validator(mode="after")
    def one_of_ns_or_n(self) -> BurstIn:
        if (self.ns is None) == (self.n is None):
            raise ValueError("give either ns (a list) or n, not both and not neither")
        return self


class RpcService:
    """The RPC client, the fib servers and the inspector of one lab."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.timeline: deque[tuple[str, dict[str, Any]]] = deque(maxlen=200)
        self.client = RpcClient(lab.settings.amqp_url, on_event=self._on_client_event, name="rabbitlens-rpc")
        self.servers = ServerPool(lab.settings.amqp_url, on_event=lab.hub.broadcast)
        self.inspector = RpcInspector()
        self._inspector_lock = threading.Lock()
        self._bursts = threading.BoundedSemaphore(MAX_CONCURRENT_BURSTS)
        self._stopping = False
        self.watch: Any = None
        self.inspecting = False

    def attach_watch(self) -> bool:
        """Listen to the firehose of the watch area, if it is there (whatever order the areas started in)."""
        if not self.inspecting:
            watch = self.lab.services.get("watch")
            if hasattr(watch, "add_trace_listener"):
                self.watch, self.inspecting = watch, True
                watch.add_trace_listener(self._on_trace)
                self.lab.hub.socketio.start_background_task(self._expire_loop)
        return self.inspecting

    def start(self) -> None:
        self.client.start()
        self.attach_watch()

    def stop(self) -> None:
        self._stopping = True
        if self.inspecting:
            self.watch.remove_trace_listener(self._on_trace)
        self.servers.stop_all(kill=True)
        self.client.stop()

    # ----------------------------------------------------------------- events
    def _on_client_event(self, name: str, payload: dict[str, Any]) -> None:
        if name in TIMELINE_EVENTS:
            self.timeline.append((name, payload))
        if name == "rpc_client_status":
            self.lab.hub.broadcast(name, payload)
        else:
            self.lab.hub.publish(name, payload)

    def _on_trace(self, event: dict[str, Any]) -> None:
        with self._inspector_lock:
            trips = self.inspector.feed(event)
        for trip in trips:
            self.lab.hub.publish("rpc_roundtrip", trip)

    def _expire_loop(self) -> None:
        while not self._stopping:
            self.lab.hub.socketio.sleep(1.0)
            with self._inspector_lock:
                trips = self.inspector.expire(time.time())
            for trip in trips:
                self.lab.hub.publish("rpc_roundtrip", trip)

    def inspect(self) -> dict[str, Any]:
        self.attach_watch()
        with self._inspector_lock:
            snapshot = self.inspector.snapshot(time.time())
        trace = None
        if self.inspecting and hasattr(self.watch, "trace_status"):
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

    def send_state(self, sid: str) -> None:
        self.lab.hub.send_to(
            sid,
            "rpc_state",
            {
                "client": self.client.status,
                "servers": self.servers.list(),
                "timeline": [{"event": name, "data": data} for name, data in list(self.timeline)],
            },
        )

    # ----------------------------------------------------------------- bursts
    def burst(self, body: BurstIn) -> dict[str, Any]:
        if not self._bursts.acquire(blocking=False):
            raise LabError(
                f"at most {MAX_CONCURRENT_BURSTS} bursts at once: wait for one to end", code="RESOURCE_LOCKED"
            )
        try:
            ns = body.ns if body.ns is not None else [body.n]
            calls = body.calls or (len(body.ns) if body.ns is not None else 100)
            return self.client.burst(
                ns,
                calls=calls,
                concurrency=body.concurrency,
                queue=body.queue,
                reply_mode=body.reply_mode,
                timeout_s=body.timeout_s,
                on_progress=lambda progress: self.lab.hub.publish("rpc_burst_progress", progress),
            )
        finally:
            self._bursts.release()


def service() -> RpcService:
    return current_lab().services["rpc"]


@api.route(
    bp,
    "/api/rpc/servers",
    "POST",
    summary="Start fib server processes",
    body=ServersIn,
    responses={201: "The servers started", 400: "Invalid input (or too many servers)"},
)
def start_servers(body: ServersIn) -> tuple[dict[str, Any], int]:
    servers = service().servers.start(
        body.count,
        queue=body.queue,
        prefetch=body.prefetch,
        work_ms=body.work_ms,
        max_n=body.max_n,
        ack_delay_ms=body.ack_delay_ms,
        queue_durable=body.queue_durable,
        queue_type=body.queue_type,
    )
    return {"servers": servers}, 201


@api.route(bp, "/api/rpc/servers", "GET", summary="The fib servers this lab started, with their live counters")
def list_servers() -> dict[str, Any]:
    return {"servers": service().servers.list()}


@api.route(
    bp,
    "/api/rpc/servers/<server_id>",
    "DELETE",
    summary="Stop a fib server gracefully, or kill it mid-request with ?kill=1",
    responses={200: "The server's last counters", 404: "No such server"},
    query={"kill": "1 to kill at once (SIGKILL): requests it held are redelivered"},
)
def stop_server(server_id: str) -> dict[str, Any]:
    kill = request.args.get("kill", "").lower() in ("1", "true", "yes")
    return {"server": service().servers.stop(server_id, kill=kill)}


@api.route(
    bp,
    "/api/rpc/call",
    "POST",
    summary="One RPC call: fib(n) from whichever server consumes the queue",
    body=CallIn,
    invalid_code="invalid",
    responses={200: "The reply", 502: "The server replied with an error", 504: "No reply in time (or no server)"},
)
def call(body: CallIn) -> dict[str, Any]:
    return service().client.call(body.n, queue=body.queue, timeout_s=body.timeout_s, reply_mode=body.reply_mode)


@api.route(
    bp,
    "/api/rpc/burst",
    "POST",
    summary="Many calls with a given concurrency; progress events, then the latency summary",
    body=BurstIn,
    invalid_code="invalid",
    responses={200: "The summary", 409: "Too many bursts at once", 504: "No server consumes the queue"},
)
def burst(body: BurstIn) -> dict[str, Any]:
    return service().burst(body)


@api.route(bp, "/api/rpc/inspect", "GET", summary="RPC round trips of every application, paired from the trace")
def inspect() -> dict[str, Any]:
    return service().inspect()


@api.route(bp, "/api/rpc/status", "GET", summary="The lab client's connection and its recent calls")
def status() -> dict[str, Any]:
    rpc = service()
    return {
        "client": rpc.client.status,
        "timeline": [{"event": name, "data": data} for name, data in list(rpc.timeline)],
    }


def init_app(app: Flask, lab: Lab) -> None:
    rpc = RpcService(lab)
    lab.services["rpc"] = rpc
    lab.shutdown_hooks.append(rpc.stop)
    lab.hub.connect_hooks.append(rpc.send_state)
    app.register_blueprint(bp)
    rpc.start()
