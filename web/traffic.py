"""The traffic area's routes: ``POST /api/publish``, ``POST/GET /api/consumers``, ``GET/DELETE /api/consumers/<id>``.

The work is :class:`lab.traffic.TrafficService`'s; its events (``published``, ``returned``, ``delivery``, ``ack``,
``nack``, ``consumer``, ``prediction_check``, ``publish_progress``, ``consumers``) reach the browsers through the
live hub.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Flask, Response, jsonify
from pydantic import Field, StrictBool

from lab.container import Lab
from lab.traffic import TrafficService
from rabbit.consumer import PREFETCH_MAX, WORK_MS_MAX
from rabbit.properties import MessageProperties
from web.api import ApiModel, api
from web.lab import current_lab
from web.live import LiveHub

bp = Blueprint("traffic", __name__)


class PublishIn(ApiModel):
    exchange: str = Field("", description='exchange name ("" is the default exchange)')
    routing_key: str = ""
    body: str = ""
    body_encoding: Literal["utf-8", "base64"] = "utf-8"
    properties: MessageProperties = Field(default_factory=MessageProperties)
    mandatory: StrictBool = Field(False, description="ask the broker to return the message if no queue takes it")
    count: int = Field(1, ge=1, description="publish this many copies (a burst), up to the configured limit")


class ConsumerIn(ApiModel):
    queue: str = Field(..., min_length=1)
    ack: Literal["auto", "manual"] = "manual"
    prefetch: int = Field(0, ge=0, le=PREFETCH_MAX, description="0 = no limit (round-robin)")
    work_ms: int = Field(0, ge=0, le=WORK_MS_MAX, description="time spent on each message before acking")
    on_message: Literal["ack", "reject", "nack_requeue", "crash"] = "ack"


def service() -> TrafficService:
    return current_lab().traffic


@api.route(
    bp,
    "/api/publish",
    "POST",
    summary="Publish a message (or a burst) with properties, confirmed by the broker",
    body=PublishIn,
    responses={
        200: "Confirmed (see routed / returned)",
        404: "No such exchange",
        503: "The broker is unreachable, or blocks publishers (a memory or disk alarm: BROKER_BLOCKED)",
    },
)
def publish(body: PublishIn) -> dict[str, Any]:
    return service().publish(**dict(body))


@api.route(
    bp,
    "/api/consumers",
    "POST",
    summary="Start a consumer on a queue (its own connection)",
    body=ConsumerIn,
    responses={201: "Consuming", 404: "No such queue", 409: "Queue locked (exclusive to another connection)"},
)
def add_consumer(body: ConsumerIn) -> tuple[dict[str, Any], int]:
    consumer = service().add_consumer(**dict(body))
    return {"id": consumer.id, **consumer.snapshot()}, 201


@api.route(bp, "/api/consumers", "GET", summary="The consumers with their knobs, state and exact counters")
def list_consumers() -> Response:
    return jsonify(service().listing())


@api.route(bp, "/api/consumers/<consumer_id>", "GET", summary="One consumer", responses={404: "No such consumer"})
def get_consumer(consumer_id: str) -> dict[str, Any]:
    return service().get(consumer_id).snapshot()


@api.route(
    bp,
    "/api/consumers/<consumer_id>",
    "DELETE",
    summary="Stop a consumer (unacked messages go back to the queue)",
    responses={200: "Stopped (its last counters)", 404: "No such consumer"},
)
def delete_consumer(consumer_id: str) -> dict[str, Any]:
    return service().remove_consumer(consumer_id)


def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    hub.send_on_connect(lab.traffic.state_events)
    app.register_blueprint(bp)
