"""Spies on queues: HTTP routes and Socket.IO events over :class:`lab.spies.SpyService`.

Routes: ``POST/GET /api/spies``, ``DELETE /api/spies/<id>``.
Socket.IO: ``spy`` (one per message the spied queue is routed, the ``tap`` payload plus ``spy_id``; high rate,
through the hub's batcher) and ``spies`` (the list, on every change and to each new client).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue
from pydantic import Field

from lab.container import Lab
from lab.spies import SpyService
from web.api import ApiModel, api
from web.lab import current_lab
from web.live import LiveHub

bp = Blueprint("spies", __name__)


class SpyIn(ApiModel):
    queue: str = Field(max_length=255, description="the queue to watch without taking its messages")


def service() -> SpyService:
    return current_lab().spies


@api.route(
    bp,
    "/api/spies",
    "POST",
    summary="Spy on a queue: a shadow queue bound as the queue is, its messages as `spy` events",
    body=SpyIn,
    responses={201: "The new spy", 404: "No such queue", 409: "Too many spies (RABBITLENS_MAX_SPIES)"},
)
def create_spy(body: SpyIn) -> tuple[dict[str, Any], int]:
    return service().create(body.queue), 201


@api.route(bp, "/api/spies", "GET", summary="List the spies, with their counts and mirrored bindings")
def list_spies() -> ResponseReturnValue:
    return jsonify(service().list())


@api.route(bp, "/api/spies/<spy_id>", "DELETE", summary="Remove a spy", responses={204: "Removed", 404: "No such spy"})
def delete_spy(spy_id: str) -> tuple[str, int]:
    service().delete(spy_id)
    return "", 204


def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    hub.send_on_connect(lambda: [("spies", lab.spies.list())])
    app.register_blueprint(bp)
