"""The topology area: declare/delete/purge/bind over HTTP, the ``topology`` live event, and ``POST /api/route``.

Socket.IO event ``topology``: the ``GET /api/topology`` object, sent to a browser when it connects, after every
change the lab makes, and when a poll (every few seconds) finds the vhost changed by someone else.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from flask import Blueprint, Flask, Response
from pydantic import Field, StrictBool, StrictStr
from werkzeug.routing import PathConverter

from lab.container import Lab
from rabbit import validation
from rabbit.topology import Topology
from web.api import ApiModel, api
from web.lab import current_lab
from web.live import LiveHub

log = logging.getLogger(__name__)

bp = Blueprint("topology", __name__)


class AmqpNameConverter(PathConverter):
    """A name in a URL path: anything, slashes included, even a leading one (``DELETE /api/queues//a``)."""

    regex = r"[\s\S]+?"  # any character, a newline too: a name with control characters gets the check's 400
    part_isolating = False  # must be said: werkzeug infers True from a regex without "/"


# --------------------------------------------------------------------------- request bodies
class ExchangeIn(ApiModel):
    name: StrictStr = Field(description="1 to 255 bytes of UTF-8; `amq.` is reserved by the broker")
    type: Literal["direct", "fanout", "topic", "headers"]
    durable: StrictBool = False
    auto_delete: StrictBool = False
    internal: StrictBool = False
    arguments: dict[str, Any] = Field(default_factory=dict, description="e.g. {'alternate-exchange': 'ae'}")


class QueueIn(ApiModel):
    name: StrictStr = Field("", description="empty: the broker names the queue (amq.gen-...)")
    durable: StrictBool = False
    auto_delete: StrictBool = False
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="x-message-ttl, x-max-length, x-dead-letter-exchange, x-dead-letter-routing-key, x-queue-type...",
    )


class BindingIn(ApiModel):
    source: StrictStr = Field(description="the exchange messages come from (not the default exchange)")
    destination: StrictStr
    destination_type: Literal["queue", "exchange"] = "queue"
    routing_key: StrictStr = ""
    arguments: dict[str, Any] = Field(default_factory=dict, description="for headers exchanges: x-match and values")


class RouteIn(ApiModel):
    exchange: StrictStr = Field(description="the exchange a message would be published to ('' = default)")
    routing_key: StrictStr = ""
    headers: dict[str, Any] = Field(default_factory=dict)


def topology() -> Topology:
    return current_lab().topology.topology


# --------------------------------------------------------------------------- routes
@api.route(bp, "/api/topology", "GET", summary="Exchanges, queues and bindings of the vhost (or what the lab made)")
def get_topology() -> dict[str, Any]:
    return topology().snapshot()


@api.route(
    bp,
    "/api/exchanges",
    "POST",
    summary="Declare an exchange",
    body=ExchangeIn,
    responses={201: "Declared (the exchange)", 403: "Access refused (amq.*)", 409: "Exists with other properties"},
)
def declare_exchange(body: ExchangeIn) -> tuple[dict[str, Any], int]:
    name = validation.check_name(body.name, "exchange name")
    validation.check_exchange_type(body.type)
    arguments = validation.check_exchange_arguments(body.arguments, frame_max=current_lab().broker.link.frame_max)
    record = topology().declare_exchange(
        name, body.type, durable=body.durable, auto_delete=body.auto_delete, internal=body.internal, arguments=arguments
    )
    return record, 201


@api.route(
    bp,
    "/api/exchanges/<amqp_name:name>",
    "DELETE",
    summary="Delete an exchange (and its bindings)",
    responses={204: "Deleted", 403: "Access refused (amq.*)", 404: "No such exchange"},
)
def delete_exchange(name: str) -> Response:
    topology().delete_exchange(validation.check_name(name, "exchange name"))
    return Response(status=204)


@api.route(
    bp,
    "/api/queues",
    "POST",
    summary="Declare a queue (never exclusive)",
    body=QueueIn,
    responses={201: "Declared (the queue, with the name the broker gave it)", 409: "Exists with other properties"},
)
def declare_queue(body: QueueIn) -> tuple[dict[str, Any], int]:
    name = validation.check_name(body.name, "queue name", allow_empty=True)
    arguments = validation.check_queue_arguments(body.arguments, frame_max=current_lab().broker.link.frame_max)
    record = topology().declare_queue(name, durable=body.durable, auto_delete=body.auto_delete, arguments=arguments)
    return record, 201


@api.route(
    bp,
    "/api/queues/<amqp_name:name>",
    "DELETE",
    summary="Delete a queue (and its messages)",
    responses={204: "Deleted", 404: "No such queue"},
)
def delete_queue(name: str) -> Response:
    topology().delete_queue(validation.check_name(name, "queue name"))
    return Response(status=204)


@api.route(
    bp,
    "/api/queues/<amqp_name:name>/purge",
    "POST",
    summary="Remove a queue's ready messages",
    responses={200: "{'purged': N}", 404: "No such queue"},
)
def purge_queue(name: str) -> dict[str, Any]:
    return {"purged": topology().purge_queue(validation.check_name(name, "queue name"))}


def checked_binding(body: BindingIn) -> dict[str, Any]:
    return {
        "source": validation.check_name(body.source, "source exchange", allow_empty=True),
        # An empty queue name means "the channel's last declared queue" in AMQP: never on the lab's shared channel.
        # The default exchange as a destination is left to the broker (it refuses: ACCESS_REFUSED).
        "destination": validation.check_name(
            body.destination, "destination", allow_empty=body.destination_type == "exchange"
        ),
        "destination_type": validation.check_destination_type(body.destination_type),
        "routing_key": validation.check_routing_key(body.routing_key),
        "arguments": validation.check_table(
            body.arguments, "binding arguments", frame_max=current_lab().broker.link.frame_max
        ),
    }


@api.route(
    bp,
    "/api/bindings",
    "POST",
    summary="Bind a queue or an exchange to an exchange",
    body=BindingIn,
    responses={201: "Bound (the binding)", 403: "Access refused (the default exchange)", 404: "No such exchange/queue"},
)
def bind(body: BindingIn) -> tuple[dict[str, Any], int]:
    return topology().bind(**checked_binding(body)), 201


@api.route(
    bp,
    "/api/bindings",
    "DELETE",
    summary="Remove a binding (the same body as when it was made)",
    body=BindingIn,
    responses={204: "Unbound", 403: "Access refused (the default exchange)", 404: "No such exchange/queue"},
)
def unbind(body: BindingIn) -> Response:
    topology().unbind(**checked_binding(body))
    return Response(status=204)


@api.route(
    bp,
    "/api/route",
    "POST",
    summary="Predict and explain where a message would go (nothing is published)",
    body=RouteIn,
    responses={
        200: "The route: routed (true, false, or null when the lab cannot tell), queues, matches, misses, alternates,"
        " notes, refused, unknown_bindings, lab_queues, caveats, topology_version",
        404: "No such exchange (a passive declare says so)",
    },
)
def explain_route(body: RouteIn) -> dict[str, Any]:
    exchange = validation.check_name(body.exchange, "exchange", allow_empty=True)
    routing_key = validation.check_routing_key(body.routing_key)
    headers = validation.check_headers(body.headers)
    return topology().route(exchange, routing_key, headers, max_age=1.0).to_dict()


# --------------------------------------------------------------------------- wiring
def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    hub.send_on_connect(lab.topology.state_events)
    app.url_map.converters.setdefault("amqp_name", AmqpNameConverter)
    app.register_blueprint(bp)
