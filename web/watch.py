"""The watch area's routes: ``POST/GET /api/taps``, ``DELETE /api/taps/<id>``, ``GET/POST /api/trace``.

The work is :class:`lab.watch.WatchService`'s; its events (``tap``, ``trace``, ``taps``, ``trace_status``) reach
the browsers through the live hub.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify
from pydantic import Field

from lab.container import Lab
from lab.watch import WatchService
from web.api import ApiModel, api
from web.lab import current_lab
from web.live import LiveHub

bp = Blueprint("watch", __name__)


class TapIn(ApiModel):
    exchange: str = Field(max_length=255, description="the exchange to watch ('' is the default exchange)")
    binding_key: str = Field(default="", max_length=255, description="the binding (routing) key, '#' for all")
    arguments: dict[str, Any] | None = Field(
        default=None, description="binding arguments, e.g. for a headers exchange {'x-match': 'all', ...}"
    )


class TraceIn(ApiModel):
    enabled: bool


def service() -> WatchService:
    return current_lab().watch


@api.route(bp, "/api/taps", "POST", summary="Tap an exchange", body=TapIn, responses={201: "The new tap"})
def create_tap(body: TapIn) -> tuple[dict[str, Any], int]:
    return service().create_tap(body.exchange, body.binding_key, body.arguments), 201


@api.route(bp, "/api/taps", "GET", summary="List the taps")
def list_taps() -> Response:
    return jsonify(service().list_taps())


@api.route(bp, "/api/taps/<tap_id>", "DELETE", summary="Remove a tap", responses={204: "Removed", 404: "No such tap"})
def delete_tap(tap_id: str) -> tuple[str, int]:
    service().delete_tap(tap_id)
    return "", 204


@api.route(bp, "/api/trace", "GET", summary="Whether the firehose trace runs, and why not if it cannot")
def get_trace() -> dict[str, Any]:
    return service().trace_status()


@api.route(
    bp,
    "/api/trace",
    "POST",
    summary="Switch the firehose trace on or off",
    body=TraceIn,
    responses={200: "The trace state", 503: "No management API"},
)
def set_trace(body: TraceIn) -> dict[str, Any]:
    return service().set_trace(body.enabled)


def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    hub.send_on_connect(lab.watch.state_events)
    app.register_blueprint(bp)
