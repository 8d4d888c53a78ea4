"""The RPC area's routes: fib servers, the lab's correlating client, and the inspector of other applications' RPC.

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
``rpc_roundtrip`` (high rate, through the hub's batcher); ``rpc_servers``, ``rpc_state`` (to each new client: the
client status, the servers and the recent timeline). The work is :class:`lab.rpc.RpcService`'s.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint, Flask, request
from pydantic import Field, StrictBool, model_validator

from lab.container import Lab
from lab.rpc import RpcService
from rabbit.errors import InvalidInput
from rabbit.fib import DEFAULT_MAX_N
from web.api import ApiModel, api
from web.lab import current_hub, current_lab
from web.live import LiveHub

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


def service() -> RpcService:
    return current_lab().rpc


@api.route(
    bp,
    "/api/rpc/servers",
    "POST",
    summary="Start fib server processes",
    body=ServersIn,
    responses={201: "The servers started", 400: "Invalid input (or too many servers)"},
)
def start_servers(body: ServersIn) -> tuple[dict[str, Any], int]:
    return {"servers": service().start_servers(**dict(body))}, 201


@api.route(bp, "/api/rpc/servers", "GET", summary="The fib servers this lab started, with their live counters")
def list_servers() -> dict[str, Any]:
    return {"servers": service().list_servers()}


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
    return {"server": service().stop_server(server_id, kill=kill)}


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
    return service().call(**dict(body))


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
    if body.sid is not None and not current_hub().is_connected(body.sid):
        raise InvalidInput(
            f"sid: no Socket.IO session {body.sid!r} is connected (give the page's socket.id, or leave it out)"
        )
    knobs = dict(body)
    owner = knobs.pop("sid")  # the page's session: its end cancels the burst
    return service().burst(**knobs, owner=owner)


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
    return service().status()


def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    hub.send_on_connect(lab.rpc.state_events)
    hub.disconnect_hooks.append(lab.rpc.owner_gone)
    app.register_blueprint(bp)
