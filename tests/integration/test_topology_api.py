"""The topology API on a real broker through a real lab server.

``shared_lab``: the shared broker, no management API, so the lab lists what it declared (``source: "lab"``).
``managed_lab``: a private node with the management API, so the lab lists the whole vhost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import quote

import pika
import pytest
import socketio

from rabbit.connection import BrokerLink
from rabbit.topology import Topology, queue_record
from tests.conftest import LabServer, wait_until

pytestmark = pytest.mark.broker


def path_of(name: str) -> str:
    return quote(name, safe="")


class Made:
    """What a test declared through the API, removed afterwards (404s ignored: the test may have done it)."""

    def __init__(self, lab: LabServer) -> None:
        self.lab = lab
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    def exchange(self, name: str, type: str = "direct", **fields: object) -> dict:
        response = self.lab.post("/api/exchanges", {"name": name, "type": type, **fields})
        assert response.status_code == 201, response.text
        self.exchanges.append(name)
        return response.json()

    def queue(self, name: str, **fields: object) -> dict:
        response = self.lab.post("/api/queues", {"name": name, **fields})
        assert response.status_code == 201, response.text
        self.queues.append(response.json()["name"])
        return response.json()

    def bind(self, source: str, destination: str, routing_key: str = "", **fields: object) -> dict:
        body = {"source": source, "destination": destination, "routing_key": routing_key, **fields}
        response = self.lab.post("/api/bindings", body)
        assert response.status_code == 201, response.text
        return response.json()

    def cleanup(self) -> None:
        for name in self.queues:
            self.lab.delete(f"/api/queues/{path_of(name)}")
        for name in self.exchanges:
            self.lab.delete(f"/api/exchanges/{path_of(name)}")


@pytest.fixture
def made(shared_lab: LabServer) -> Iterator[Made]:
    helper = Made(shared_lab)
    yield helper
    helper.cleanup()


@pytest.fixture
def managed_made(managed_lab: LabServer) -> Iterator[Made]:
    helper = Made(managed_lab)
    yield helper
    helper.cleanup()


def assert_next_request_works(lab: LabServer, unique: Callable[[str], str]) -> None:
    """After a broker error the lab's channel was replaced: a declare and a delete just work."""
    name = unique("after-error")
    response = lab.post("/api/queues", {"name": name})
    assert response.status_code == 201, response.text
    assert lab.delete(f"/api/queues/{path_of(name)}").status_code == 204


def publish(amqp, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties | None = None) -> None:
    """Publish with a confirm: when it returns, every queue the message was routed to holds it (a plain publish
    reaches classic queues asynchronously, so a count read right after it may not include it yet)."""
    channel = amqp.channel
    if not getattr(channel, "_rl_confirms", False):
        channel.confirm_delivery()
        channel._rl_confirms = True
    channel.basic_publish(exchange, routing_key, body, properties)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def topology_of(lab: LabServer) -> dict:
    response = lab.get("/api/topology")
    assert response.status_code == 200, response.text
    return response.json()


def names(items: list[dict]) -> list[str]:
    return [item["name"] for item in items]


# --------------------------------------------------------------------------- listing
def test_topology_without_management_lists_what_the_lab_declared(shared_lab, made, unique):
    before = topology_of(shared_lab)
    assert before["source"] == "lab"
    assert {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"} <= set(names(before["exchanges"]))
    made.exchange(unique("logs"), "fanout", durable=False, auto_delete=False)
    made.queue(unique("q"), arguments={"x-max-length": 5})
    made.bind(unique("logs"), unique("q"))
    after = topology_of(shared_lab)
    exchange = next(e for e in after["exchanges"] if e["name"] == unique("logs"))
    assert exchange == {
        "name": unique("logs"),
        "type": "fanout",
        "durable": False,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }
    queue = next(q for q in after["queues"] if q["name"] == unique("q"))
    assert queue == {
        "name": unique("q"),
        "durable": False,
        "exclusive": False,
        "auto_delete": False,
        "arguments": {"x-max-length": 5},
        "messages": 0,
        "consumers": 0,
    }
    assert {
        "source": unique("logs"),
        "destination": unique("q"),
        "destination_type": "queue",
        "routing_key": "",
        "arguments": {},
    } in after["bindings"]


def test_lab_listing_gives_exact_counts_and_forgets_what_others_deleted(shared_lab, made, amqp, unique):
    made.queue(unique("counted"))
    made.queue(unique("doomed"))
    for n in range(3):
        publish(amqp, "", unique("counted"), f"m{n}".encode())
    listed = {q["name"]: q for q in topology_of(shared_lab)["queues"]}
    assert listed[unique("counted")]["messages"] == 3
    amqp.channel.queue_delete(unique("doomed"))
    assert unique("doomed") not in names(topology_of(shared_lab)["queues"])


def test_lab_listing_survives_a_queue_locked_by_another_connection(broker_url, amqp, unique):
    """A passive declare of a queue another connection holds exclusively fails with 405, not 404: the listing
    keeps the queue and still answers (driven without a lab server, so no poll races the setup)."""
    link = BrokerLink(broker_url, name="rl-test-topology").start()
    try:
        assert link.wait_connected(10)
        topology = Topology(link)
        topology.declare_queue(unique("taken"))
        amqp.channel.queue_delete(unique("taken"))
        amqp.channel.queue_declare(unique("taken"), exclusive=True)  # now locked to the test's connection
        amqp.channel.queue_declare(unique("free"))
        amqp.queues.append(unique("free"))
        topology.registry.add_queue(queue_record(unique("free")))
        snapshot = topology.lab_snapshot()
        assert unique("taken") in names(snapshot["queues"])
        assert unique("free") in names(snapshot["queues"])
        topology.declare_queue(unique("after"))  # the link's own channel was never touched
        amqp.queues.append(unique("after"))
    finally:
        link.stop()


def test_topology_with_management_shows_the_whole_vhost(managed_lab, managed_node, managed_made, unique):
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(unique("foreign"))  # declared by another app, not by the lab
        channel.exchange_declare(unique("foreign-x"), "topic")
        channel.queue_bind(unique("foreign"), unique("foreign-x"), "a.#")
        topology = topology_of(managed_lab)
        assert topology["source"] == "management"
        assert unique("foreign") in names(topology["queues"])
        assert next(e for e in topology["exchanges"] if e["name"] == unique("foreign-x"))["type"] == "topic"
        assert {
            "source": unique("foreign-x"),
            "destination": unique("foreign"),
            "destination_type": "queue",
            "routing_key": "a.#",
            "arguments": {},
        } in topology["bindings"]
        assert not any(b["source"] == "" for b in topology["bindings"]), "default exchange bindings are implicit"
        managed_made.queue(unique("mine"))
        assert unique("mine") in names(topology_of(managed_lab)["queues"])
        # The explainer sees other apps' bindings too.
        route = managed_lab.post(
            "/api/route", {"exchange": unique("foreign-x"), "routing_key": "a.b.c", "headers": {}}
        ).json()
        assert route["queues"] == [unique("foreign")]
    finally:
        channel = connection.channel()
        channel.queue_delete(unique("foreign"))
        channel.exchange_delete(unique("foreign-x"))
        connection.close()


# --------------------------------------------------------------------------- exchanges
def test_declare_and_delete_an_exchange(shared_lab, made, unique, amqp):
    body = made.exchange(unique("x"), "topic", durable=True, arguments={"alternate-exchange": unique("ae")})
    assert body == {
        "name": unique("x"),
        "type": "topic",
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {"alternate-exchange": unique("ae")},
    }
    amqp.channel.exchange_declare(unique("x"), passive=True)  # it is really on the broker
    response = shared_lab.delete(f"/api/exchanges/{path_of(unique('x'))}")
    assert response.status_code == 204
    assert response.content == b""
    assert unique("x") not in names(topology_of(shared_lab)["exchanges"])
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:
        amqp.fresh_channel().exchange_declare(unique("x"), passive=True)
    assert gone.value.reply_code == 404


def test_redeclaring_an_exchange_with_another_type_is_409_with_the_broker_text(shared_lab, made, unique):
    made.exchange(unique("typed"), "topic")
    response = shared_lab.post("/api/exchanges", {"name": unique("typed"), "type": "fanout"})
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "PRECONDITION_FAILED"
    assert error["reply_code"] == 406
    assert "inequivalent arg 'type'" in error["message"]
    assert unique("typed") in error["message"]
    assert_next_request_works(shared_lab, unique)


def test_redeclaring_an_exchange_with_other_flags_is_409(shared_lab, made, unique):
    made.exchange(unique("flags"), "direct", durable=False)
    response = shared_lab.post("/api/exchanges", {"name": unique("flags"), "type": "direct", "durable": True})
    assert response.status_code == 409
    assert "inequivalent arg 'durable'" in error_of(response)["message"]
    assert_next_request_works(shared_lab, unique)


def test_a_new_amq_exchange_is_403_access_refused(shared_lab, unique):
    response = shared_lab.post("/api/exchanges", {"name": f"amq.{unique('reserved')}", "type": "direct"})
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "ACCESS_REFUSED"
    assert error["reply_code"] == 403
    assert "reserved prefix 'amq.*'" in error["message"]
    assert_next_request_works(shared_lab, unique)


def test_deleting_a_system_exchange_is_403(shared_lab, unique):
    response = shared_lab.delete("/api/exchanges/amq.direct")
    assert response.status_code == 403
    assert error_of(response)["code"] == "ACCESS_REFUSED"
    assert "amq.direct" in error_of(response)["message"]
    assert_next_request_works(shared_lab, unique)


def test_deleting_an_unknown_exchange_is_404(shared_lab, unique):
    response = shared_lab.delete(f"/api/exchanges/{unique('never')}")
    assert response.status_code == 404
    error = error_of(response)
    assert error == {
        "code": "NOT_FOUND",
        "reply_code": 404,
        "message": f"no exchange '{unique('never')}' in vhost '/'",
        "hint": "declare the exchange first, or check its name",
    }
    assert_next_request_works(shared_lab, unique)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "", "type": "direct"}, "exchange name must not be empty"),
        ({"name": "x" * 256, "type": "direct"}, "exchange name is 256 bytes of UTF-8"),
        ({"name": "兔" * 86, "type": "direct"}, "258 bytes of UTF-8 (86 characters)"),
        ({"name": "rl-test-bad-type", "type": "x-delayed"}, "type: Input should be"),
        ({"name": "rl-test-bad", "type": "direct", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"name": "rl-test-bad", "type": "direct", "durable": "yes"}, "durable: Input should be a valid boolean"),
        ({"type": "direct"}, "name: Field required"),
        ({"name": "rl-test-bad", "type": "direct", "arguments": {"alternate-exchange": 5}}, "alternate-exchange"),
    ],
)
def test_invalid_exchange_input_is_400_before_the_broker(shared_lab, body, message):
    response = shared_lab.post("/api/exchanges", body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "INVALID"
    assert message in error["message"]


def test_bad_json_is_400(shared_lab):
    response = shared_lab.post(
        "/api/exchanges", data=b'{"name": "x", "type":', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "INVALID"
    assert "not valid JSON" in error_of(response)["message"]


def test_a_lone_surrogate_is_invalid_utf8(shared_lab):
    response = shared_lab.post(
        "/api/queues", data=b'{"name": "bad\\ud800"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid UTF-8" in error_of(response)["message"]


# --------------------------------------------------------------------------- queues
def test_declare_a_queue_and_purge_and_delete_it(shared_lab, made, amqp, unique):
    body = made.queue(unique("work"), durable=False, auto_delete=False)
    assert body["name"] == unique("work") and body["exclusive"] is False and body["messages"] == 0
    for n in range(4):
        publish(amqp, "", unique("work"), f"task {n}".encode())
    purge = shared_lab.post(f"/api/queues/{path_of(unique('work'))}/purge")
    assert purge.status_code == 200
    assert purge.json() == {"purged": 4}
    assert amqp.channel.queue_declare(unique("work"), passive=True).method.message_count == 0
    assert shared_lab.delete(f"/api/queues/{path_of(unique('work'))}").status_code == 204
    assert unique("work") not in names(topology_of(shared_lab)["queues"])


def test_an_empty_name_lets_the_broker_name_a_queue_that_other_connections_can_use(shared_lab, made, amqp):
    body = made.queue("")
    assert body["name"].startswith("amq.gen-")
    assert body["exclusive"] is False
    # Not exclusive to the lab's connection: another connection may consume from it (else RESOURCE_LOCKED).
    publish(amqp, "", body["name"], b"hello")
    _, _, payload = amqp.channel.basic_get(body["name"], auto_ack=True)
    assert payload == b"hello"
    assert body["name"] in names(topology_of(shared_lab)["queues"])


def test_a_durable_mismatch_on_redeclare_is_409_as_in_the_tutorial(shared_lab, made, unique):
    made.queue(unique("hello"), durable=False)
    response = shared_lab.post("/api/queues", {"name": unique("hello"), "durable": True})
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "PRECONDITION_FAILED" and error["reply_code"] == 406
    assert f"inequivalent arg 'durable' for queue '{unique('hello')}'" in error["message"]
    assert_next_request_works(shared_lab, unique)


def test_queue_arguments_reach_the_broker_and_work(shared_lab, made, amqp, unique):
    made.exchange(unique("dlx"), "fanout")
    made.queue(unique("dead"))
    made.bind(unique("dlx"), unique("dead"))
    made.queue(
        unique("short"),
        arguments={
            "x-max-length": 1,
            "x-message-ttl": 600000,
            "x-dead-letter-exchange": unique("dlx"),
            "x-dead-letter-routing-key": "dropped",
            "x-queue-type": "classic",
        },
    )
    for n in range(3):
        publish(amqp, "", unique("short"), f"m{n}".encode())
    # Re-declaring passively would not tell the arguments apart, but their effect shows: 1 kept, 2 dead-lettered.
    wait_until(lambda: amqp.channel.queue_declare(unique("dead"), passive=True).method.message_count == 2)
    assert amqp.channel.queue_declare(unique("short"), passive=True).method.message_count == 1
    method, _, _ = amqp.channel.basic_get(unique("dead"), auto_ack=True)
    assert method.routing_key == "dropped"
    listed = next(q for q in topology_of(shared_lab)["queues"] if q["name"] == unique("short"))
    assert listed["arguments"]["x-dead-letter-exchange"] == unique("dlx")


def test_a_quorum_queue_can_be_declared(shared_lab, made, unique):
    body = made.queue(unique("quorum"), durable=True, arguments={"x-queue-type": "quorum"})
    assert body["arguments"] == {"x-queue-type": "quorum"}


def test_a_non_durable_quorum_queue_is_refused_by_the_broker(shared_lab, unique):
    response = shared_lab.post("/api/queues", {"name": unique("nq"), "arguments": {"x-queue-type": "quorum"}})
    assert response.status_code == 409
    assert error_of(response)["code"] == "PRECONDITION_FAILED"
    assert_next_request_works(shared_lab, unique)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"x-message-ttl": -5}, "x-message-ttl must be between 0"),
        ({"x-max-length": "many"}, "x-max-length must be an integer"),
        ({"x-queue-type": "lazy"}, "x-queue-type must be one of classic, quorum, stream"),
        ({"x-dead-letter-routing-key": "k"}, "needs x-dead-letter-exchange"),
        ({"x-message-ttl": 1.5}, "numbers with a fraction"),
    ],
)
def test_invalid_queue_arguments_are_400(shared_lab, unique, arguments, message):
    response = shared_lab.post("/api/queues", {"name": unique("bad-args"), "arguments": arguments})
    assert response.status_code == 400
    assert message in error_of(response)["message"]


def test_a_queue_cannot_be_asked_to_be_exclusive(shared_lab, unique):
    response = shared_lab.post("/api/queues", {"name": unique("ex"), "exclusive": True})
    assert response.status_code == 400
    assert "exclusive: Extra inputs are not permitted" in error_of(response)["message"]


@pytest.mark.parametrize(("method", "suffix"), [("delete", ""), ("post", "/purge")])
def test_unknown_queue_is_404_for_delete_and_purge(shared_lab, unique, method, suffix):
    response = getattr(shared_lab, method)(f"/api/queues/{unique('missing')}{suffix}")
    assert response.status_code == 404
    assert error_of(response) == {
        "code": "NOT_FOUND",
        "reply_code": 404,
        "message": f"no queue '{unique('missing')}' in vhost '/'",
        "hint": "declare the queue first, or check its name",
    }
    assert_next_request_works(shared_lab, unique)


@pytest.mark.parametrize("label", ["with/slash", "50% off", "with space", "ünïcødé 兔", "/leading", "a//b", "end/"])
def test_odd_names_work_in_url_paths(shared_lab, made, amqp, unique, label):
    queue, exchange = f"{unique('q')} {label}", f"{unique('x')} {label}"
    if label.startswith("/"):
        queue, exchange = f"{label}{unique('q')}", f"{label}{unique('x')}"
    made.queue(queue)
    made.exchange(exchange, "fanout")
    made.bind(exchange, queue)
    publish(amqp, exchange, "", b"x")
    purge = shared_lab.post(f"/api/queues/{path_of(queue)}/purge")
    assert purge.status_code == 200, purge.text
    assert purge.json() == {"purged": 1}
    assert shared_lab.delete(f"/api/queues/{path_of(queue)}").status_code == 204
    assert shared_lab.delete(f"/api/exchanges/{path_of(exchange)}").status_code == 204
    topology = topology_of(shared_lab)
    assert queue not in names(topology["queues"])
    assert exchange not in names(topology["exchanges"])


def test_a_queue_named_like_the_purge_route_is_still_deleted(shared_lab, made, unique):
    name = f"{unique('q')}/purge"
    made.queue(name)
    assert shared_lab.post(f"/api/queues/{path_of(name)}/purge").json() == {"purged": 0}
    assert shared_lab.delete(f"/api/queues/{path_of(name)}").status_code == 204


# --------------------------------------------------------------------------- bindings
def test_bind_and_unbind_a_queue(shared_lab, made, amqp, unique):
    made.exchange(unique("direct"), "direct")
    made.queue(unique("q"))
    binding = made.bind(unique("direct"), unique("q"), "info")
    assert binding == {
        "source": unique("direct"),
        "destination": unique("q"),
        "destination_type": "queue",
        "routing_key": "info",
        "arguments": {},
    }
    assert binding in topology_of(shared_lab)["bindings"]
    publish(amqp, unique("direct"), "info", b"1")
    assert amqp.channel.queue_declare(unique("q"), passive=True).method.message_count == 1
    response = shared_lab.delete("/api/bindings", json=binding)
    assert response.status_code == 204
    assert binding not in topology_of(shared_lab)["bindings"]
    publish(amqp, unique("direct"), "info", b"2")
    assert amqp.channel.queue_declare(unique("q"), passive=True).method.message_count == 1


def test_exchange_to_exchange_bindings_and_alternate_exchange_work(shared_lab, made, amqp, unique):
    made.exchange(unique("ae"), "fanout")
    made.queue(unique("unrouted"))
    made.bind(unique("ae"), unique("unrouted"))
    made.exchange(unique("front"), "direct", arguments={"alternate-exchange": unique("ae")})
    made.exchange(unique("back"), "topic")
    made.queue(unique("orders"))
    e2e = made.bind(unique("front"), unique("back"), "orders", destination_type="exchange")
    assert e2e["destination_type"] == "exchange"
    made.bind(unique("back"), unique("orders"), "orders")
    publish(amqp, unique("front"), "orders", b"through two exchanges")
    publish(amqp, unique("front"), "misc", b"to the alternate")
    assert amqp.channel.queue_declare(unique("orders"), passive=True).method.message_count == 1
    assert amqp.channel.queue_declare(unique("unrouted"), passive=True).method.message_count == 1

    routed = shared_lab.post("/api/route", {"exchange": unique("front"), "routing_key": "orders"}).json()
    assert routed["routed"] is True and routed["queues"] == [unique("orders")]
    assert [unique("front"), unique("back")] in [m["via"] for m in routed["matches"]]
    unrouted = shared_lab.post("/api/route", {"exchange": unique("front"), "routing_key": "misc"}).json()
    assert unrouted["queues"] == [unique("unrouted")]
    assert unrouted["alternates"] == [{"exchange": unique("front"), "alternate": unique("ae")}]

    response = shared_lab.delete("/api/bindings", json=e2e)
    assert response.status_code == 204
    after = shared_lab.post("/api/route", {"exchange": unique("front"), "routing_key": "orders"}).json()
    assert after["queues"] == [unique("unrouted")]


def test_binding_to_or_from_the_default_exchange_is_403(shared_lab, made, unique):
    made.queue(unique("q"))
    response = shared_lab.post("/api/bindings", {"source": "", "destination": unique("q"), "routing_key": "k"})
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "ACCESS_REFUSED",
        "reply_code": 403,
        "message": "operation not permitted on the default exchange",
        "hint": "the default exchange cannot be bound, unbound or deleted: use a named exchange",
    }
    assert_next_request_works(shared_lab, unique)
    made.exchange(unique("x"), "direct")
    response = shared_lab.post(
        "/api/bindings", {"source": unique("x"), "destination": "", "destination_type": "exchange"}
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "ACCESS_REFUSED"
    assert_next_request_works(shared_lab, unique)


@pytest.mark.parametrize("missing", ["source", "destination"])
def test_binding_with_a_missing_end_is_404(shared_lab, made, unique, missing):
    made.exchange(unique("x"), "direct")
    made.queue(unique("q"))
    body = {"source": unique("x"), "destination": unique("q"), "routing_key": "k"}
    body[missing] = unique("nowhere")
    response = shared_lab.post("/api/bindings", body)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "NOT_FOUND" and error["reply_code"] == 404
    assert unique("nowhere") in error["message"]
    assert_next_request_works(shared_lab, unique)


def test_invalid_binding_input_is_400(shared_lab, unique):
    for body, message in [
        ({"source": "x", "destination": "q", "destination_type": "topic"}, "destination_type"),
        ({"source": "x", "destination": "q", "routing_key": "k" * 256}, "routing key is 256 bytes"),
        ({"source": "x", "destination": ""}, "destination must not be empty"),
        ({"source": "x", "destination": "q", "arguments": {"v": 0.5}}, "numbers with a fraction"),
    ]:
        response = shared_lab.post("/api/bindings", body)
        assert response.status_code == 400, body
        assert message in error_of(response)["message"]


def test_headers_bindings_keep_their_arguments(shared_lab, made, amqp, unique):
    made.exchange(unique("h"), "headers")
    made.queue(unique("pdf"))
    arguments = {"x-match": "all", "format": "pdf", "type": "report"}
    made.bind(unique("h"), unique("pdf"), arguments=arguments)
    listed = [b for b in topology_of(shared_lab)["bindings"] if b["source"] == unique("h")]
    assert listed == [
        {
            "source": unique("h"),
            "destination": unique("pdf"),
            "destination_type": "queue",
            "routing_key": "",
            "arguments": arguments,
        }
    ]
    route = shared_lab.post(
        "/api/route", {"exchange": unique("h"), "headers": {"format": "pdf", "type": "report"}}
    ).json()
    assert route["queues"] == [unique("pdf")]
    publish(amqp, unique("h"), "", b"r", pika.BasicProperties(headers={"format": "pdf", "type": "report"}))
    assert amqp.channel.queue_declare(unique("pdf"), passive=True).method.message_count == 1
    miss = shared_lab.post("/api/route", {"exchange": unique("h"), "headers": {"format": "pdf"}}).json()
    assert (miss["routed"], miss["queues"]) == (None, [])  # no management API: others' bindings unknown
    assert miss["misses"][0]["explanation"]["x_match"] == "all"


# --------------------------------------------------------------------------- the route endpoint
def test_route_explains_the_tutorial_topic_example(shared_lab, made, unique):
    made.exchange(unique("animals"), "topic")
    made.queue(unique("q1"))
    made.queue(unique("q2"))
    made.bind(unique("animals"), unique("q1"), "*.orange.*")
    made.bind(unique("animals"), unique("q2"), "*.*.rabbit")
    made.bind(unique("animals"), unique("q2"), "lazy.#")
    result = shared_lab.post("/api/route", {"exchange": unique("animals"), "routing_key": "quick.orange.rabbit"})
    assert result.status_code == 200
    body = result.json()
    assert body["routed"] is True
    assert sorted(body["queues"]) == sorted([unique("q1"), unique("q2")])
    matched = {m["binding"]["routing_key"]: m for m in body["matches"]}
    assert set(matched) == {"*.orange.*", "*.*.rabbit"}
    steps = matched["*.orange.*"]["explanation"]["steps"]
    assert [(s["token"], s["words"], s["ok"]) for s in steps] == [
        ("*", ["quick"], True),
        ("orange", ["orange"], True),
        ("*", ["rabbit"], True),
    ]
    assert [m["binding"]["routing_key"] for m in body["misses"]] == ["lazy.#"]
    assert body["misses"][0]["explanation"]["failed_at"]["token_index"] == 0

    lazy = shared_lab.post("/api/route", {"exchange": unique("animals"), "routing_key": "lazy.pink"}).json()
    assert lazy["queues"] == [unique("q2")]
    nothing = shared_lab.post("/api/route", {"exchange": unique("animals"), "routing_key": "quick.brown.fox"}).json()
    assert nothing["routed"] is None and nothing["queues"] == []  # no management API: unknown, not dropped


def test_route_to_an_unknown_exchange_is_404(shared_lab, unique):
    response = shared_lab.post("/api/route", {"exchange": unique("nowhere"), "routing_key": "k"})
    assert response.status_code == 404
    assert error_of(response)["code"] == "NOT_FOUND"
    assert unique("nowhere") in error_of(response)["message"]


def test_route_through_the_default_exchange_names_the_queue(shared_lab, made, unique):
    made.queue(unique("direct-to"))
    body = shared_lab.post("/api/route", {"exchange": "", "routing_key": unique("direct-to")}).json()
    assert body["queues"] == [unique("direct-to")]
    missing = shared_lab.post("/api/route", {"exchange": "", "routing_key": unique("absent")}).json()
    assert missing["routed"] is False


def test_route_input_is_validated(shared_lab):
    response = shared_lab.post("/api/route", {"exchange": "amq.topic", "routing_key": "k" * 256})
    assert response.status_code == 400
    response = shared_lab.post("/api/route", {"exchange": "amq.topic", "headers": {"v": 1.5}})
    assert response.status_code == 400
    response = shared_lab.post("/api/route", {"exchange": "amq.topic", "key": "a"})
    assert response.status_code == 400


def test_openapi_document_covers_the_topology_routes(shared_lab):
    paths = shared_lab.get("/api/openapi.json").json()["paths"]
    assert set(paths["/api/exchanges"]) == {"post"}
    assert set(paths["/api/exchanges/{name}"]) == {"delete"}
    assert set(paths["/api/queues/{name}"]) == {"delete"}
    assert set(paths["/api/queues/{name}/purge"]) == {"post"}
    assert set(paths["/api/bindings"]) == {"post", "delete"}
    assert "get" in paths["/api/topology"]
    assert "post" in paths["/api/route"]
    schema = paths["/api/exchanges"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ExchangeIn")


# --------------------------------------------------------------------------- the live event
class TopologyListener:
    """A real Socket.IO client collecting ``topology`` events, whether sent alone or inside a ``batch``."""

    def __init__(self, lab: LabServer) -> None:
        self.events: list[dict] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("topology", self.events.append)
        self.client.on("batch", self.on_batch)
        self.client.connect(lab.base_url, transports=["websocket"])

    def on_batch(self, batch: dict) -> None:
        for item in batch.get("events", []):
            if item.get("event") == "topology":
                self.events.append(item["data"])

    def saw(self, predicate: Callable[[dict], bool]) -> bool:
        return any(predicate(event) for event in list(self.events))

    def close(self) -> None:
        self.client.disconnect()


def test_topology_event_on_connect_and_after_each_change(shared_lab, made, unique):
    listener = TopologyListener(shared_lab)
    try:
        wait_until(lambda: listener.events, message="topology on connect")
        assert listener.events[0]["source"] == "lab"
        made.queue(unique("live"))
        wait_until(lambda: listener.saw(lambda t: unique("live") in names(t["queues"])), message="the new queue pushed")
        shared_lab.delete(f"/api/queues/{path_of(unique('live'))}")
        wait_until(
            lambda: (
                listener.saw(lambda t: unique("live") not in names(t["queues"]))
                and not names(listener.events[-1]["queues"]).count(unique("live"))
            ),
            message="the deleted queue pushed",
        )
    finally:
        listener.close()


def test_topology_event_shows_other_apps_changes_with_management(managed_lab, managed_node, unique):
    listener = TopologyListener(managed_lab)
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    try:
        wait_until(lambda: listener.events, message="topology on connect")
        assert listener.events[0]["source"] == "management"
        connection.channel().queue_declare(unique("outside"))
        wait_until(
            lambda: listener.saw(lambda t: unique("outside") in names(t["queues"])),
            timeout=15,
            message="a queue another app declared, pushed by the poll",
        )
    finally:
        connection.channel().queue_delete(unique("outside"))
        connection.close()
        listener.close()
