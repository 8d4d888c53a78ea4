"""The RPC area: fib servers, the lab's correlating client, and the inspector of other applications' RPC.

Routes:
- ``POST /api/rpc/servers`` ``{"count", "prefetch", "work_ms", "queue", "max_n", "ack_delay_ms"}`` -> 201
  ``{"servers": [...]}``; ``GET /api/rpc/servers`` -> ``{"servers": [{id, pid, state, handled, errors,
  in_flight, ...}]}``; ``DELETE /api/rpc/servers/<id>`` (graceful) or ``?kill=1`` (SIGKILL mid-request).
- ``POST /api/rpc/call`` ``{"n", "queue", "timeout_s", "reply_mode", "expire"}`` -> ``{"correlation_id", "n",
  "result", "latency_ms", "reply_mode", "server", "queue", "expiration", "not_integer"}``; errors ``timeout``
  (504, with ``consumers``), ``server_error`` (502), ``invalid`` (400), ``BROKER_DOWN`` (503).
- ``POST /api/rpc/burst`` ``{"ns" | "n", "calls", "concurrency", "queue", "reply_mode", "timeout_s", "expire",
  "sid"}`` -> the summary; ``rpc_burst_progress`` events while it runs. ``GET /api/rpc/bursts`` lists the running
  ones; ``DELETE /api/rpc/bursts/<id>`` cancels one, and so does the end of the Socket.IO session ``sid``.
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
from pydantic import Field, StrictBool, model_validator

from rabbit.errors import InvalidInput, LabError
from rabbit.fib import DEFAULT_MAX_N
from rabbit.rpc import RpcClient
from rabbit.rpc_inspector import RpcInspector
from rabbit.rpc_servers import ServerPool
from web.api import ApiModel, api
from web.lab import Lab, current_lab
from web.limits import Slots

log = logging.getLogger(__name__)

bp = Blueprint("rpc", __name__)

# The client accepts any n a server might serve; the lab's servers refuse n above their own bound (server_error).
CLIENT_MAX_N = 1_000_000
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
    expire: StrictBool = Field(
        default=True, description="the request carries expiration = timeout_s (false: it waits in the queue forever)"
    )


class BurstIn(ApiModel):
    ns: list[N] | None = Field(default=None, min_length=1, max_length=10_000, description="the n of each call")
    n: N | None = Field(default=None, description="one n for every call (instead of ns)")
    calls: int | None = Field(default=None, ge=1, le=200_000, description="how many calls (default: len(ns) or 100)")
    concurrency: int = Field(default=1, ge=1, le=256, description="calls in flight at once")
    queue: QueueName = "rpc_queue"
    reply_mode: ReplyMode = "callback_queue"
    timeout_s: float = Field(default=5, gt=0, le=120)
    expire: StrictBool = Field(default=True, description="each request carries expiration = timeout_s")
    sid: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the Socket.IO session id of the page starting the burst: the burst is cancelled when it ends",
    )

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
        self.servers = ServerPool(
            lab.settings.amqp_url,
            on_event=lab.hub.broadcast,
            max_servers=lab.settings.rpc_max_servers,
            keep_ended=lab.settings.rpc_kept_servers,
        )
        self.inspector = RpcInspector()
        self._inspector_lock = threading.Lock()
        self.burst_slots = Slots(
            lab.settings.rpc_max_bursts,
            "at most {limit} bursts at once (RABBITLENS_RPC_MAX_BURSTS): wait for one to end, or cancel one",
        )
        self.burst_sids: dict[str, str] = {}  # burst id -> the Socket.IO session whose end cancels it
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
        if body.sid is not None and not self.lab.hub.is_connected(body.sid):
            raise LabError(
                f"sid: no Socket.IO session {body.sid!r} is connected (give the page's socket.id, or leave it out)",
                code="invalid",
            )
        with self.burst_slots.hold():
            burst_id = self.client.new_burst_id()
            if body.sid is not None:
                self.burst_sids[burst_id] = body.sid
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
                    burst_id=burst_id,
                    max_s=self.lab.settings.rpc_burst_max_s,
                    expire=body.expire,
                )
            finally:
                self.burst_sids.pop(burst_id, None)

    def running_bursts(self) -> list[dict[str, Any]]:
        """The running bursts; ``cancel_on_disconnect``: a page's session ends it (its sid is not shown)."""
        return [{**b, "cancel_on_disconnect": b["burst_id"] in self.burst_sids} for b in self.client.running_bursts()]

    def cancel_burst(self, burst_id: str, reason: str) -> dict[str, Any]:
        progress = self.client.cancel_burst(burst_id, reason)
        if progress is None:
            raise LabError(f"no running burst {burst_id!r}", code="NOT_FOUND")
        return progress

    def client_gone(self, sid: str) -> None:
        """A Socket.IO session ended: cancel the bursts its page started."""
        for burst_id, owner in list(self.burst_sids.items()):
            if owner == sid:
                reason = "the page that started it went away (its Socket.IO session ended)"
                self.client.cancel_burst(burst_id, reason, wait=False)


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
    "/api/rpc/servers",
    "DELETE",
    summary="Clear the stopped, killed and exited servers from the list (?stopped=1; running ones stay)",
    query={"stopped": "1 (required): forget every server that no longer runs"},
    responses={200: "{'cleared': [ids], 'servers': [the servers still listed]}"},
)
def clear_servers() -> dict[str, Any]:
    if request.args.get("stopped", "").lower() not in ("1", "true", "yes"):
        raise InvalidInput("give ?stopped=1: this clears the servers that no longer run (stop running ones by id)")
    pool = service().servers
    return {"cleared": pool.clear(), "servers": pool.list()}


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
    return service().client.call(
        body.n, queue=body.queue, timeout_s=body.timeout_s, reply_mode=body.reply_mode, expire=body.expire
    )


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


@api.route(bp, "/api/rpc/bursts", "GET", summary="The RPC bursts running now, with their progress")
def list_bursts() -> dict[str, Any]:
    return {"bursts": service().running_bursts()}


@api.route(
    bp,
    "/api/rpc/bursts/<burst_id>",
    "DELETE",
    summary="Cancel a running RPC burst (nothing more is sent; calls in flight are dropped)",
    responses={200: "Its progress when it stopped", 404: "No such running burst"},
)
def cancel_burst(burst_id: str) -> dict[str, Any]:
    return service().cancel_burst(burst_id, "cancelled by DELETE /api/rpc/bursts")


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
    lab.hub.disconnect_hooks.append(rpc.client_gone)
    app.register_blueprint(bp)
    rpc.start()
