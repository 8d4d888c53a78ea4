"""Near misses and the routing matrix through a real lab server, checked against the real broker's deliveries."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pika
import pytest

from tests.conftest import LabServer
from tests.integration.test_topology_api import Made

pytestmark = pytest.mark.broker


@pytest.fixture
def made(shared_lab: LabServer) -> Iterator[Made]:
    helper = Made(shared_lab)
    yield helper
    helper.cleanup()


def delivered(amqp, exchange: str, routing_key: str, queues: list[str], headers: dict | None = None) -> set[str]:
    """Publish one message with a confirm, then take it from every queue that got it: the broker's own answer."""
    channel = amqp.fresh_channel()
    channel.confirm_delivery()
    channel.basic_publish(exchange, routing_key, b"m", pika.BasicProperties(headers=headers or None))
    got = set()
    for queue in queues:
        method, _, _ = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            got.add(queue)
    amqp.channel = amqp.connection.channel()  # a plain channel for the next publish's confirm_delivery
    return got


@pytest.fixture
def animals(made: Made, unique) -> tuple[str, list[str]]:
    """The tutorial-5 topology, one binding per queue so that a delivery names the binding that took it."""
    exchange = unique("animals")
    made.exchange(exchange, "topic")
    queues = []
    for name, key in (("orange", "*.orange.*"), ("rabbit", "*.*.rabbit"), ("lazy", "lazy.#"), ("lazy1", "lazy.*")):
        queue = made.queue(unique(name))["name"]
        made.bind(exchange, queue, key)
        queues.append(queue)
    return exchange, queues


def test_a_near_miss_fix_really_routes_on_the_broker(shared_lab, amqp, animals):
    exchange, queues = animals
    answer = shared_lab.post("/api/route", {"exchange": exchange, "routing_key": "quick.orange"}).json()
    assert answer["routed"] is None  # the shared broker has no management API: not known to be dropped
    near = {n["binding"]["routing_key"]: n for n in answer["near_misses"]}
    assert "one word short: `*` needs a third word" in near["*.orange.*"]["difference"]
    assert answer["misses_total"] == 4
    assert delivered(amqp, exchange, "quick.orange", queues) == set()
    for found in answer["near_misses"]:
        got = delivered(amqp, exchange, found["fix"]["routing_key"], queues)
        assert found["binding"]["destination"] in got, found


def test_a_matching_binding_is_never_a_near_miss_and_misses_are_cut_unless_all_are_asked(shared_lab, animals):
    exchange, _ = animals
    answer = shared_lab.post("/api/route", {"exchange": exchange, "routing_key": "lazy.orange.rabbit"}).json()
    matched = [m["binding"] for m in answer["matches"]]
    assert all(n["binding"] not in matched for n in answer["near_misses"])
    assert [n["binding"]["routing_key"] for n in answer["near_misses"]] == ["lazy.*"]
    everything = shared_lab.post("/api/route", {"exchange": exchange, "routing_key": "x", "all_misses": True}).json()
    assert len(everything["misses"]) == 4 and "misses_total" not in everything


def test_a_direct_key_with_a_trailing_space_and_a_header_of_the_wrong_type(shared_lab, amqp, made, unique):
    direct = unique("orders")
    made.exchange(direct, "direct")
    queue = made.queue(unique("orders-q"))["name"]
    made.bind(direct, queue, "orders")
    (spaced,) = shared_lab.post("/api/route", {"exchange": direct, "routing_key": "orders "}).json()["near_misses"]
    assert spaced["difference"] == "trailing space in the routing key"
    assert delivered(amqp, direct, spaced["fix"]["routing_key"], [queue]) == {queue}

    headers_x = unique("hx")
    made.exchange(headers_x, "headers")
    pdf = made.queue(unique("pdf"))["name"]
    made.bind(headers_x, pdf, "", arguments={"format": "pdf", "copies": 1})
    body = {"exchange": headers_x, "headers": {"format": "PDF", "copies": "1"}}
    (near,) = shared_lab.post("/api/route", body).json()["near_misses"]
    assert near["distance"] == 2
    assert "header `format` is `PDF`, the binding wants `pdf`" in near["difference"]
    assert '`"1"` (a string)' in near["difference"]
    assert delivered(amqp, headers_x, "", [pdf], near["fix"]["headers"]) == {pdf}


KEYS = [
    "quick.orange.rabbit",
    "lazy.orange.elephant",
    "quick.orange.fox",
    "lazy.brown.fox",
    "lazy",
    "quick.brown.fox",
    "orange",
    "quick.orange.male.rabbit",
    "lazy.orange.male.rabbit",
    "",
]


def test_the_matrix_cells_are_the_brokers_deliveries(shared_lab, amqp, animals):
    exchange, queues = animals
    response = shared_lab.post("/api/route/matrix", {"exchange": exchange, "routing_keys": KEYS})
    assert response.status_code == 200, response.text
    matrix = response.json()
    assert matrix["exchange"] == exchange and matrix["keys"] == KEYS
    assert sorted(b["routing_key"] for b in matrix["bindings"]) == sorted(
        ["*.orange.*", "*.*.rabbit", "lazy.#", "lazy.*"]
    )
    for key, row in zip(KEYS, matrix["cells"], strict=True):
        predicted = {b["destination"] for b, cell in zip(matrix["bindings"], row, strict=True) if cell}
        assert predicted == delivered(amqp, exchange, key, queues), key
        single = shared_lab.post("/api/route", {"exchange": exchange, "routing_key": key}).json()
        assert predicted == set(single["queues"])


def test_the_matrix_as_csv_has_a_header_row(shared_lab, animals):
    exchange, _ = animals
    body = {"exchange": exchange, "routing_keys": KEYS[:3]}
    response = shared_lab.post("/api/route/matrix?format=csv", body)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    matrix = shared_lab.post("/api/route/matrix", body).json()
    assert rows[0][0] == "routing_key" and len(rows[0]) == 5
    for label, binding in zip(rows[0][1:], matrix["bindings"], strict=True):
        assert label == f"{exchange} -> {binding['destination']} [{binding['routing_key']}]"
    for row, key, cells in zip(rows[1:], KEYS[:3], matrix["cells"], strict=True):
        assert row == [key, *("true" if c else "false" for c in cells)]
    assert rows[1].count("true") == 2  # quick.orange.rabbit: *.orange.* and *.*.rabbit
    assert len(rows) == 4


def test_the_matrix_of_headers_rows_and_its_limits(shared_lab, made, unique):
    headers_x = unique("hx")
    made.exchange(headers_x, "headers")
    pdf = made.queue(unique("pdf"))["name"]
    made.bind(headers_x, pdf, "", arguments={"format": "pdf"})
    rows = [{"format": "pdf"}, {"format": "PDF"}]
    matrix = shared_lab.post("/api/route/matrix", {"exchange": headers_x, "headers": rows}).json()
    assert matrix["cells"] == [[True], [False]] and matrix["headers"] == rows and matrix["keys"] == ["", ""]
    too_many = shared_lab.post("/api/route/matrix", {"exchange": headers_x, "routing_keys": ["k"] * 201})
    assert too_many.status_code == 400 and "at most 200" in too_many.json()["error"]["message"]
    nothing = shared_lab.post("/api/route/matrix", {"exchange": headers_x})
    assert nothing.status_code == 400
    mismatch = shared_lab.post("/api/route/matrix", {"exchange": headers_x, "routing_keys": ["a"], "headers": rows})
    assert mismatch.status_code == 400
    missing = shared_lab.post("/api/route/matrix", {"exchange": unique("nowhere"), "routing_keys": ["a"]})
    assert missing.status_code == 404


def test_the_openapi_document_has_the_matrix_and_the_new_route_fields(shared_lab):
    document = shared_lab.get("/api/openapi.json").json()
    assert "post" in document["paths"]["/api/route/matrix"]
    assert "all_misses" in document["components"]["schemas"]["RouteIn"]["properties"]
    assert "routing_keys" in document["components"]["schemas"]["MatrixIn"]["properties"]
