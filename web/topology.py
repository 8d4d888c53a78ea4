"""The topology area's routes: declare/delete/purge/bind, ``POST /api/route`` and ``POST /api/route/matrix``.

The work (and every check of names, keys and tables) is :class:`lab.topology.TopologyService`'s; its ``topology``
event (the ``GET /api/topology`` object, to a browser when it connects, after every change the lab makes, and when
a poll finds the vhost changed by someone else) reaches the browsers through the live hub.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

from flask import Blueprint, Flask, Response, request
from pydantic import Field, StrictBool, StrictStr
from werkzeug.routing import PathConverter

from lab.container import Lab
from lab.topology import TopologyService
from web.api import ApiModel, api
from web.lab import current_lab
from web.live import LiveHub

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
    all_misses: StrictBool = Field(
        False, description="explain every binding that does not match (else the first RABBITLENS_ROUTE_MISSES_SHOWN)"
    )


class MatrixIn(ApiModel):
    exchange: StrictStr = Field(description="the exchange the messages would be published to (not the default one)")
    routing_keys: list[StrictStr] = Field(
        default_factory=list, description="one row per key (up to RABBITLENS_ROUTE_MATRIX_MAX_KEYS)"
    )
    headers: list[dict[str, Any]] | None = Field(
        None, description="the headers of each row (as many as routing_keys; alone: one row per headers object)"
    )


def service() -> TopologyService:
    return current_lab().topology


# --------------------------------------------------------------------------- routes
@api.route(bp, "/api/topology", "GET", summary="Exchanges, queues and bindings of the vhost (or what the lab made)")
def get_topology() -> dict[str, Any]:
    return service().snapshot()


@api.route(
    bp,
    "/api/exchanges",
    "POST",
    summary="Declare an exchange",
    body=ExchangeIn,
    responses={201: "Declared (the exchange)", 403: "Access refused (amq.*)", 409: "Exists with other properties"},
)
def declare_exchange(body: ExchangeIn) -> tuple[dict[str, Any], int]:
    return service().declare_exchange(**dict(body)), 201


@api.route(
    bp,
    "/api/exchanges/<amqp_name:name>",
    "DELETE",
    summary="Delete an exchange (and its bindings)",
    responses={204: "Deleted", 403: "Access refused (amq.*)", 404: "No such exchange"},
)
def delete_exchange(name: str) -> Response:
    service().delete_exchange(name)
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
    return service().declare_queue(**dict(body)), 201


@api.route(
    bp,
    "/api/queues/<amqp_name:name>",
    "DELETE",
    summary="Delete a queue (and its messages)",
    responses={204: "Deleted", 404: "No such queue"},
)
def delete_queue(name: str) -> Response:
    service().delete_queue(name)
    return Response(status=204)


@api.route(
    bp,
    "/api/queues/<amqp_name:name>/purge",
    "POST",
    summary="Remove a queue's ready messages",
    responses={200: "{'purged': N}", 404: "No such queue"},
)
def purge_queue(name: str) -> dict[str, Any]:
    return {"purged": service().purge_queue(name)}


@api.route(
    bp,
    "/api/bindings",
    "POST",
    summary="Bind a queue or an exchange to an exchange",
    body=BindingIn,
    responses={201: "Bound (the binding)", 403: "Access refused (the default exchange)", 404: "No such exchange/queue"},
)
def bind(body: BindingIn) -> tuple[dict[str, Any], int]:
    return service().bind(**dict(body)), 201


@api.route(
    bp,
    "/api/bindings",
    "DELETE",
    summary="Remove a binding (the same body as when it was made)",
    body=BindingIn,
    responses={204: "Unbound", 403: "Access refused (the default exchange)", 404: "No such exchange/queue"},
)
def unbind(body: BindingIn) -> Response:
    service().unbind(**dict(body))
    return Response(status=204)


@api.route(
    bp,
    "/api/route",
    "POST",
    summary="Predict and explain where a message would go (nothing is published)",
    body=RouteIn,
    responses={
        200: "The route: routed (true, false, or null when the lab cannot tell), queues, matches, misses (the first"
        " RABBITLENS_ROUTE_MISSES_SHOWN unless all_misses), misses_total, near_misses [{binding, via, distance,"
        " difference, fix: {routing_key, headers}}], alternates, notes, refused, unknown_bindings, lab_queues,"
        " caveats, topology_version",
        404: "No such exchange (a passive declare says so)",
    },
)
def explain_route(body: RouteIn) -> dict[str, Any]:
    return service().explain(**dict(body))


@api.route(
    bp,
    "/api/route/matrix",
    "POST",
    summary="Which binding takes which routing key: one row per key, one column per binding (nothing is published)",
    body=MatrixIn,
    query={"format": "`csv` for CSV with a header row (default JSON)"},
    responses={
        200: "{exchange, bindings (the exchange's and those reached through exchange-to-exchange bindings and"
        " alternate exchanges), keys, headers, cells: one row per key of true|false per binding}",
        404: "No such exchange",
    },
)
def route_matrix(body: MatrixIn) -> Any:
    matrix = service().matrix(**dict(body))
    if request.args.get("format") == "csv":
        return Response(matrix_csv(matrix), mimetype="text/csv", headers={"Content-Disposition": "inline"})
    return matrix


def matrix_csv(matrix: dict[str, Any]) -> str:
    """The matrix as CSV: a header row (routing_key, [headers,] one column per binding), then one row per key."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    with_headers = "headers" in matrix
    columns = [binding_label(b) for b in matrix["bindings"]]
    writer.writerow(["routing_key", *(["headers"] if with_headers else []), *columns])
    for i, key in enumerate(matrix["keys"]):
        extra = [json.dumps(matrix["headers"][i], ensure_ascii=False)] if with_headers else []
        writer.writerow([key, *extra, *("true" if cell else "false" for cell in matrix["cells"][i])])
    return out.getvalue()


def binding_label(binding: dict[str, Any]) -> str:
    """``source -> destination [key]`` (``=>`` to an exchange; headers bindings show their arguments)."""
    arrow = "=>" if binding["destination_type"] == "exchange" else "->"
    what = binding["routing_key"] if not binding.get("arguments") else json.dumps(binding["arguments"], sort_keys=True)
    return f"{binding['source']} {arrow} {binding['destination']} [{what}]"


# --------------------------------------------------------------------------- wiring
def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    hub.send_on_connect(lab.topology.state_events)
    app.url_map.converters.setdefault("amqp_name", AmqpNameConverter)
    app.register_blueprint(bp)
