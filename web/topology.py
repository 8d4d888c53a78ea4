"""The topology area: declare/delete/purge/bind over HTTP, the ``topology`` live event, and ``POST /api/route``.

Socket.IO event ``topology``: the ``GET /api/topology`` object, sent to a browser when it connects, after every
change the lab makes, and when a poll (every few seconds) finds the vhost changed by someone else.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from flask import Blueprint, Flask, Response, request
from pydantic import Field, StrictBool, StrictStr
from werkzeug.routing import PathConverter

from rabbit import validation
from rabbit.errors import InvalidInput, LabError
from rabbit.topology import Topology
from rabbit.urls import vhost_of
from web.api import ApiModel, api
from web.lab import Lab, current_lab

log = logging.getLogger(__name__)

bp = Blueprint("topology", __name__)
AREA = "topology"
POLL_INTERVAL_S = 3.0


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


# --------------------------------------------------------------------------- the live feed
class TopologyFeed:
    """Pushes the ``topology`` event: at once after the lab's own changes, and when a poll sees a change."""

    def __init__(self, topology: Topology, lab: Lab, interval: float = POLL_INTERVAL_S) -> None:
        self.topology = topology
        self.lab = lab
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # each new snapshot, after its broadcast

    def poke(self) -> None:
        """Something changed: send the new topology now (from the feed's own thread, not the request's)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="topology-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def current(self) -> dict[str, Any] | None:
        try:
            self._last = self.topology.snapshot(max_age=1.0)
        except LabError as exc:
            log.info("no topology to send: %s", exc.message)
        return self._last

    def send_to(self, sid: str) -> None:
        snapshot = self.current()
        if snapshot is not None:
            self.lab.hub.send_to(sid, "topology", snapshot)

    def _run(self) -> None:
        while not self._stop.is_set():
            poked = self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not poked and not self.lab.link.connected:
                continue
            try:
                snapshot = self.topology.snapshot()
            except LabError as exc:
                log.debug("topology poll failed: %s", exc.message)
                continue
            except Exception:
                log.exception("topology poll failed")
                continue
            if poked or snapshot != self._last:
                self._last = snapshot
                self.lab.hub.broadcast("topology", snapshot)
                for listener in list(self.listeners):
                    listener(snapshot)


def topology() -> Topology:
    return current_lab().services[AREA]


def feed() -> TopologyFeed:
    return current_lab().services[f"{AREA}.feed"]


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
    arguments = validation.check_exchange_arguments(body.arguments, frame_max=current_lab().link.frame_max)
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
    arguments = validation.check_queue_arguments(body.arguments, frame_max=current_lab().link.frame_max)
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
            body.arguments, "binding arguments", frame_max=current_lab().link.frame_max
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
        200: "The route: routed (true, false, or null when the lab cannot tell), queues, matches, misses (the first"
        " RABBITLENS_ROUTE_MISSES_SHOWN unless all_misses), misses_total, near_misses [{binding, via, distance,"
        " difference, fix: {routing_key, headers}}], alternates, notes, refused, unknown_bindings, lab_queues,"
        " caveats, topology_version",
        404: "No such exchange (a passive declare says so)",
    },
)
def explain_route(body: RouteIn) -> dict[str, Any]:
    exchange = validation.check_name(body.exchange, "exchange", allow_empty=True)
    routing_key = validation.check_routing_key(body.routing_key)
    headers = validation.check_headers(body.headers)
    settings = current_lab().settings
    result = topology().route(
        exchange,
        routing_key,
        headers,
        max_age=1.0,
        explain_misses=None if body.all_misses else settings.route_misses_shown,
        near_misses=settings.route_near_misses,
    )
    return result.to_dict()


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
    exchange = validation.check_name(body.exchange, "exchange")
    keys = [validation.check_routing_key(k) for k in body.routing_keys]
    rows_headers = [validation.check_headers(h) for h in body.headers] if body.headers is not None else None
    limit = current_lab().settings.route_matrix_max_keys
    rows = max(len(keys), len(rows_headers or []))
    if rows_headers is not None and keys and len(rows_headers) != len(keys):
        raise InvalidInput(
            f"{len(keys)} routing keys but {len(rows_headers)} headers objects: give one headers object per key "
            "(or headers alone, one row each)"
        )
    if rows == 0:
        raise InvalidInput("give at least one routing key (or headers object): each is one row of the matrix")
    if rows > limit:
        raise InvalidInput(
            f"{rows} rows: a matrix takes at most {limit} routing keys (RABBITLENS_ROUTE_MATRIX_MAX_KEYS)"
        )
    keys = keys or [""] * rows
    matrix = topology().matrix(exchange, keys, rows_headers or [{}] * rows, max_age=1.0)
    if rows_headers is None:
        matrix.pop("headers")
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
def lab_bindings(lab: Lab) -> list[dict[str, Any]]:
    """The bindings of the lab's own taps (their exact arguments), for the routing engine: they take copies
    on the broker, so predictions count them, marked as the lab's."""
    watch = lab.services.get("watch")
    found = []
    for tap in list(getattr(watch, "taps", {}).values()):
        if tap.state == "active" and tap.queue and tap.exchange:
            found.append(
                {
                    "source": tap.exchange,
                    "destination": tap.queue,
                    "destination_type": "queue",
                    "routing_key": tap.binding_key,
                    "arguments": dict(tap.arguments or {}),
                    "lab": "tap",
                }
            )
    spies = lab.services.get("spies")  # the spies' shadow queues take copies too: marked as the lab's spy
    return found + (spies.lab_bindings() if spies is not None else [])


def init_app(app: Flask, lab: Lab) -> None:
    live: list[TopologyFeed] = []
    service = Topology(
        lab.link,
        lab.management,
        vhost=vhost_of(lab.settings.amqp_url),
        on_change=lambda: live[0].poke() if live else None,
        timeout=lab.settings.broker_timeout_s,
    )
    service.lab_bindings = lambda: lab_bindings(lab)
    topology_feed = TopologyFeed(service, lab)
    live.append(topology_feed)
    lab.services[AREA] = service
    lab.services[f"{AREA}.feed"] = topology_feed
    lab.hub.connect_hooks.append(topology_feed.send_to)
    lab.shutdown_hooks.append(topology_feed.stop)
    topology_feed.start()
    app.url_map.converters.setdefault("amqp_name", AmqpNameConverter)
    app.register_blueprint(bp)
