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

from lab.spies import SpyService
from web.api import ApiModel, api
from web.lab import Lab, current_lab
from web.limits import Slots

bp = Blueprint("spies", __name__)
AREA = "spies"


class SpyIn(ApiModel):
    queue: str = Field(max_length=255, description="the queue to watch without taking its messages")


def service() -> SpyService:
    return current_lab().services[AREA]


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


def init_app(app: Flask, lab: Lab) -> None:
    spies = SpyService(
        lab.settings.amqp_url,
        lab.services["topology"],
        Slots(
            lab.settings.max_spies,
            "at most {limit} spies at a time (RABBITLENS_MAX_SPIES): delete one first",
            code="PRECONDITION_FAILED",
        ),
        on_event=lab.hub.publish,
        on_list=lambda spies: lab.hub.broadcast("spies", spies),
        timeout=lab.settings.broker_timeout_s,
    )
    lab.services[AREA] = spies
    lab.services["topology.feed"].listeners.append(spies.refresh)
    lab.shutdown_hooks.append(spies.stop)
    lab.hub.connect_hooks.append(lambda sid: lab.hub.send_to(sid, "spies", spies.list()))
    app.register_blueprint(bp)
