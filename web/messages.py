"""A message's whole life and "explain, then verify": routes over :class:`lab.message_service.MessageService`.

Routes: ``GET /api/messages/<id>`` (a lab message's timeline), ``GET /api/route/verification`` (the engine's
predictions checked against the broker's routing of every traced publish). Socket.IO: ``route_disagreement``.
The service sees every event the other services report through the lab's ``ObservedSink`` (see ``create_app``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from lab.container import Lab
from lab.message_service import MessageService
from rabbit.errors import LabError
from web.api import api
from web.lab import current_lab
from web.live import LiveHub

bp = Blueprint("messages", __name__)


def service() -> MessageService:
    return current_lab().messages


@api.route(
    bp,
    "/api/messages/<message_id>",
    "GET",
    summary="A lab message's whole life: each stage the lab observed, in order",
    responses={
        200: '{"id", "exchange", "routing_key", "properties", "stages": [{"stage", "at" (epoch ms), ...}]}',
        404: "No such lab message (or older than the last RABBITLENS_MESSAGES_KEPT)",
    },
)
def get_message(message_id: str) -> dict[str, Any]:
    found = service().timeline.get(message_id)
    if found is None:
        kept = current_lab().settings.messages_kept
        raise LabError(
            f"no lab message {message_id!r}: the lab keeps the timelines of its last {kept} messages "
            "(RABBITLENS_MESSAGES_KEPT); the id is the x-rabbitlens-id header of a message the lab published",
            code="NOT_FOUND",
        )
    return found


@api.route(
    bp,
    "/api/route/verification",
    "GET",
    summary="The engine's predictions checked against the broker's routing of every traced publish",
    responses={
        200: '{"checked", "agreed", "disagreed": [last 100 with both answers and the topology version], ...}',
    },
)
def get_verification() -> dict[str, Any]:
    return service().verification()


def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    app.register_blueprint(bp)
