"""Honest predictions (issue 17, items 2-5 and 8): what the lab predicts for what it cannot list, for internal
exchanges, with its own taps bound, for headers bindings read through the management API, and when the topology
changed between the prediction and the publish.

``shared_lab`` runs on the shared broker without the management API; ``managed_lab`` on a private node with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pika
import pytest

from tests.conftest import LabServer, wait_until
from tests.integration.helpers import LiveEvents

pytestmark = pytest.mark.broker

HINT = "rabbitmq-plugins enable rabbitmq_management"
TAP_NOTE = (
    "without the lab's tap this message would be unroutable (mandatory will not return it while the tap is bound)"
)


class Cleanup:
    """What a test declared through the lab, removed afterwards."""

    def __init__(self, lab: LabServer) -> None:
        self.lab = lab
        self.paths: list[str] = []

    def add(self, kind: str, body: dict) -> dict:
        response = self.lab.post(f"/api/{kind}", body)
        assert response.status_code == 201, response.text
        answer = response.json()
        if kind == "queues":
            self.paths.insert(0, f"/api/queues/{quote(answer['name'], safe='')}")
        elif kind == "exchanges":
            self.paths.append(f"/api/exchanges/{quote(answer['name'], safe='')}")
        elif kind == "taps":
            self.paths.insert(0, f"/api/taps/{answer['id']}")
        return answer

    def close(self) -> None:
        for path in self.paths:
            self.lab.delete(path)


@pytest.fixture
def lab_made(shared_lab: LabServer) -> Iterator[Cleanup]:
    helper = Cleanup(shared_lab)
    yield helper
    helper.close()


@pytest.fixture
def managed_made(managed_lab: LabServer) -> Iterator[Cleanup]:
    helper = Cleanup(managed_lab)
    yield helper
    helper.close()


@pytest.fixture
def managed_live(managed_lab: LabServer) -> Iterator[LiveEvents]:
    events = LiveEvents(managed_lab.base_url)
    yield events
    events.close()


@pytest.fixture
def foreign(managed_node) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """Another application's channel on the managed node."""
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def route(lab: LabServer, exchange: str, routing_key: str = "", headers: dict | None = None) -> dict:
    response = lab.post("/api/route", {"exchange": exchange, "routing_key": routing_key, "headers": headers or {}})
    assert response.status_code == 200, response.text
    return response.json()


def publish(lab: LabServer, exchange: str, routing_key: str = "", **fields: object) -> dict:
    response = lab.post("/api/publish", {"exchange": exchange, "routing_key": routing_key, "body": "m", **fields})
    assert response.status_code == 200, response.text
    return response.json()


def depth(amqp, queue: str) -> int:
    return amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count


# --------------------------------------------------------------------------- item 2: what others declared
def test_without_management_an_exchange_another_app_declared_exists_with_unknown_bindings(shared_lab, amqp, unique):
    exchange, queue = unique("their-logs"), unique("their-q")
    amqp.channel.exchange_declare(exchange, "fanout")  # a tutorial's emit_log.py, not the lab
    amqp.exchanges.append(exchange)
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    amqp.channel.queue_bind(queue, exchange)
    answer = route(shared_lab, exchange, "k")
    assert answer["routed"] is None, "neither 404 nor unroutable: the lab cannot tell"
    assert answer["queues"] == []
    assert answer["unknown_bindings"] == [exchange]
    assert f"'{exchange}' exists; its bindings are unknown without the management API" in answer["notes"]
    assert any(HINT in note for note in answer["notes"])
    assert not any(note.startswith("no queue takes") for note in answer["notes"])
    sent = publish(shared_lab, exchange, "k")
    assert sent["routed"] is True and sent["predicted"] is None  # "unknown", not a wrong "no queue"
    assert sent["prediction_check"] is None
    assert any("bindings are unknown" in note for note in sent["prediction_notes"])
    # A name nobody declared is still 404, as the broker says.
    missing = shared_lab.post("/api/route", {"exchange": unique("nobody"), "routing_key": "k"})
    assert missing.status_code == 404


def test_without_management_the_default_exchange_finds_a_queue_another_app_declared(shared_lab, amqp, unique):
    hello = unique("hello")
    amqp.channel.queue_declare(hello)  # send.py declares 'hello' itself, not through the lab
    amqp.queues.append(hello)
    answer = route(shared_lab, "", hello)
    assert answer["routed"] is True
    assert answer["queues"] == [hello]
    assert not any("finds no queue" in m["explanation"]["text"] for m in answer["misses"])
    assert any("passive declare shows it exists" in note for note in answer["notes"])
    sent = publish(shared_lab, "", hello)
    assert (sent["predicted"], sent["routed"]) == ([hello], True)
    assert sent["prediction_check"] is None
    wait_until(lambda: depth(amqp, hello) == 1, message="the broker delivered to the queue")
    absent = route(shared_lab, "", unique("absent"))
    assert absent["routed"] is False and absent["queues"] == []


# --------------------------------------------------------------------------- item 4: internal exchanges
def test_a_publish_to_an_internal_exchange_is_predicted_refused(shared_lab, lab_made, unique):
    inner, queue = unique("inner"), unique("inner-q")
    lab_made.add("exchanges", {"name": inner, "type": "fanout", "internal": True})
    lab_made.add("queues", {"name": queue})
    lab_made.add("bindings", {"source": inner, "destination": queue})
    answer = route(shared_lab, inner)
    assert answer["routed"] is False
    assert answer["refused"] == "internal exchange"
    assert answer["queues"] == []
    assert any(note.startswith("refused: internal exchange") for note in answer["notes"])
    refused = shared_lab.post("/api/publish", {"exchange": inner, "routing_key": "", "body": "m"})
    assert refused.status_code == 403, "the broker refuses it, as predicted"


# --------------------------------------------------------------------------- item 5: the lab's own taps
def test_a_lab_tap_is_counted_in_predictions_and_marked_as_the_labs(shared_lab, lab_made, live, unique):
    exchange, queue = unique("tapped"), unique("orders")
    lab_made.add("exchanges", {"name": exchange, "type": "topic"})
    lab_made.add("queues", {"name": queue})
    lab_made.add("bindings", {"source": exchange, "destination": queue, "routing_key": "order.*"})
    tap = lab_made.add("taps", {"exchange": exchange, "binding_key": "#"})
    answer = route(shared_lab, exchange, "audit.log")
    assert answer["routed"] is True
    assert answer["queues"] == [tap["queue"]] and answer["lab_queues"] == [tap["queue"]]
    assert [(m["destination"], m["lab"]) for m in answer["matches"]] == [(tap["queue"], True)]
    assert TAP_NOTE in answer["notes"]
    sent = publish(shared_lab, exchange, "audit.log", mandatory=True)
    assert (sent["routed"], sent["returned"], sent["predicted"]) == (True, None, [tap["queue"]])
    assert sent["prediction_check"] is None, "prediction and broker agree: no difference to explain"
    assert TAP_NOTE in sent["prediction_notes"]
    event = live.wait_for("published", lambda e: e["id"] == sent["id"])[0]
    assert TAP_NOTE in event["prediction_notes"]
    both = route(shared_lab, exchange, "order.new")
    assert sorted(both["queues"]) == sorted([queue, tap["queue"]])
    assert {m["destination"]: m["lab"] for m in both["matches"]} == {queue: False, tap["queue"]: True}
    assert TAP_NOTE not in both["notes"]


# --------------------------------------------------------------------------- item 8: stale predictions
def test_a_queue_deleted_by_another_app_just_before_a_publish_is_a_topology_change(
    shared_lab, lab_made, amqp, live, unique
):
    exchange, queue = unique("stale-x"), unique("stale-q")
    lab_made.add("exchanges", {"name": exchange, "type": "direct"})
    for _attempt in range(3):  # the topology feed's own poll may refresh the cache in between: try again then
        lab_made.add("queues", {"name": queue})
        lab_made.add("bindings", {"source": exchange, "destination": queue, "routing_key": "k"})
        assert route(shared_lab, exchange, "k")["queues"] == [queue]  # the prediction's cached view
        amqp.fresh_channel().queue_delete(queue)  # another application, 1 ms before the publish
        sent = publish(shared_lab, exchange, "k")
        if sent["predicted"] == [queue]:
            break
    assert sent["predicted"] == [queue] and sent["routed"] is False
    check = sent["prediction_check"]
    assert check["verdict"] == "topology_changed"
    assert check["topology_changed"] is True
    # Without the management API the exchange's other bindings are unknown: read again, nothing is known.
    assert check["repredicted"] is None
    assert "the topology changed" in check["note"]
    event = live.wait_for("published", lambda e: e["id"] == sent["id"])[0]
    assert event["prediction_check"] == check


def test_without_management_a_binding_another_app_made_makes_the_prediction_unknown_not_dropped(
    shared_lab, lab_made, amqp, unique
):
    """The lab declares `logs` (fanout); a tutorial's receive_logs.py binds its own queue with plain pika."""
    exchange, queue = unique("logs"), unique("receive-logs-q")
    lab_made.add("exchanges", {"name": exchange, "type": "fanout"})
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    amqp.channel.queue_bind(queue, exchange)  # not through the lab, and no management API to list it
    answer = route(shared_lab, exchange, "")
    assert (answer["routed"], answer["queues"], answer["unknown_bindings"]) == (None, [], [exchange])
    assert not any("drops it" in n for n in answer["notes"])
    assert any("its bindings are unknown without the management API" in c for c in answer["caveats"])
    assert any("rabbitmq-plugins enable rabbitmq_management" in c for c in answer["caveats"])
    sent = publish(shared_lab, exchange)
    assert (sent["predicted"], sent["routed"]) == (None, True)  # the broker delivers; the lab did not say it drops
    assert sent["prediction_check"] is None
    assert amqp.channel.queue_declare(queue, passive=True).method.message_count == 1


def test_without_management_a_standard_exchange_with_a_foreign_binding_is_unknown(shared_lab, amqp, unique):
    queue, key = unique("amq-topic-q"), unique("news.sport")
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    amqp.channel.queue_bind(queue, "amq.topic", key)
    try:
        answer = route(shared_lab, "amq.topic", key)
        assert (answer["routed"], answer["unknown_bindings"]) == (None, ["amq.topic"])
        assert not any("drops it" in n for n in answer["notes"])
    finally:
        amqp.channel.queue_unbind(queue, "amq.topic", key)


def test_without_management_the_lab_s_matches_stand_with_a_caveat(shared_lab, lab_made, unique):
    exchange, queue = unique("some-x"), unique("some-q")
    lab_made.add("exchanges", {"name": exchange, "type": "direct"})
    lab_made.add("queues", {"name": queue})
    lab_made.add("bindings", {"source": exchange, "destination": queue, "routing_key": "k"})
    answer = route(shared_lab, exchange, "k")
    assert (answer["routed"], answer["queues"], answer["unknown_bindings"]) == (True, [queue], [])
    assert any("other applications' bindings are unknown" in c for c in answer["caveats"])


def test_an_internal_exchange_is_still_refused_without_management(shared_lab, lab_made, unique):
    exchange = unique("internal-x")
    lab_made.add("exchanges", {"name": exchange, "type": "fanout", "internal": True})
    answer = route(shared_lab, exchange, "")
    assert (answer["routed"], answer["refused"], answer["unknown_bindings"]) == (False, "internal exchange", [])


def test_a_binding_made_just_before_a_publish_is_found_by_a_re_read(managed_lab, managed_made, foreign, unique):
    exchange, queue = unique("fresh-x"), unique("fresh-q")
    managed_made.add("exchanges", {"name": exchange, "type": "direct"})
    managed_made.add("queues", {"name": queue})
    for _attempt in range(3):
        # The lab's view has no binding yet (after a retry's unbind, a re-read may still hold it for a moment).
        wait_until(lambda: route(managed_lab, exchange, "k")["queues"] == [], message="a view without the binding")
        foreign.queue_bind(queue, exchange, "k")  # another application, 1 ms before the publish
        sent = publish(managed_lab, exchange, "k")
        if sent["predicted"] == []:
            break
        foreign.queue_unbind(queue, exchange, "k")
    assert (sent["predicted"], sent["routed"]) == ([], True)
    check = sent["prediction_check"]
    assert (check["verdict"], check["topology_changed"], check["repredicted"]) == ("topology_changed", True, [queue])
    assert check["topology_version"]["predicted"] != check["topology_version"]["now"]


def test_a_delivery_to_a_queue_bound_just_before_the_publish_says_the_topology_changed(
    managed_lab, managed_made, managed_live, foreign, unique
):
    exchange, first, second = unique("moved-x"), unique("moved-1"), unique("moved-2")
    managed_made.add("exchanges", {"name": exchange, "type": "direct"})
    managed_made.add("queues", {"name": first})
    managed_made.add("queues", {"name": second})
    managed_made.add("bindings", {"source": exchange, "destination": first, "routing_key": "k"})
    consumer = managed_lab.post("/api/consumers", {"queue": second, "ack": "auto"})
    assert consumer.status_code == 201, consumer.text
    try:
        for _attempt in range(3):
            assert route(managed_lab, exchange, "k")["queues"] == [first]
            foreign.queue_bind(second, exchange, "k")
            sent = publish(managed_lab, exchange, "k")
            if sent["predicted"] == [first]:
                break
            foreign.queue_unbind(second, exchange, "k")
        assert sent["predicted"] == [first] and sent["routed"] is True
        managed_live.wait_for("delivery", lambda e: e["id"] == sent["id"] and e["queue"] == second)
        check = managed_live.wait_for("prediction_check", lambda e: e["id"] == sent["id"])[0]
        assert check["stage"] == "delivery"
        assert check["verdict"] == "topology_changed"
        assert check["repredicted"] == sorted([first, second])
        assert f"delivered it to '{second}'" in check["note"]
    finally:
        managed_lab.delete(f"/api/consumers/{consumer.json()['id']}")


# --------------------------------------------------------------------------- item 3: headers through management
def test_the_labs_own_headers_bindings_keep_their_exact_arguments_under_management(
    managed_lab, managed_made, managed_node, unique
):
    exchange, present, nested = unique("h"), unique("present"), unique("nested")
    managed_made.add("exchanges", {"name": exchange, "type": "headers"})
    managed_made.add("queues", {"name": present})
    managed_made.add("queues", {"name": nested})
    presence = {"x-match": "all", "flag": None}  # a void value: the broker asks only that 'flag' is there
    ordered = {"x-match": "all", "t": {"k": 1, "j": "a"}}  # the broker compares nested tables in order
    managed_made.add("bindings", {"source": exchange, "destination": present, "arguments": presence})
    managed_made.add("bindings", {"source": exchange, "destination": nested, "arguments": ordered})
    listed = {b["destination"]: b for b in managed_lab.get("/api/topology").json()["bindings"]}
    assert listed[present]["arguments"] == presence and "arguments_unclear" not in listed[present]
    assert "arguments_unclear" not in listed[nested]  # (Flask sorts JSON keys on the way out: order not shown)
    answer = route(managed_lab, exchange, headers={"flag": 7, "t": {"k": 1, "j": "a"}})
    assert sorted(answer["queues"]) == sorted([present, nested])
    assert answer["caveats"] == []
    swapped = route(managed_lab, exchange, headers={"t": {"j": "a", "k": 1}})
    assert swapped["queues"] == []
    sent = publish(managed_lab, exchange, properties={"headers": {"flag": 7, "t": {"k": 1, "j": "a"}}})
    assert sent["predicted"] == sorted([present, nested]) and sent["routed"] is True
    assert sent["prediction_check"] is None
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    try:
        channel = connection.channel()
        counts = [channel.queue_declare(q, passive=True).method.message_count for q in (present, nested)]
    finally:
        connection.close()
    assert counts == [1, 1], "the broker delivered to both, as predicted"


def test_another_apps_headers_binding_says_where_the_management_view_cannot_tell(
    managed_lab, managed_made, foreign, unique
):
    exchange, queue = unique("their-h"), unique("their-hq")
    managed_made.add("exchanges", {"name": exchange, "type": "headers"})
    managed_made.add("queues", {"name": queue})
    foreign.queue_bind(queue, exchange, arguments={"x-match": "all", "flag": None})
    listed = [b for b in managed_lab.get("/api/topology").json()["bindings"] if b["destination"] == queue]
    assert listed[0]["arguments_unclear"] == ["flag"]
    answer = route(managed_lab, exchange, headers={"flag": 7})
    assert answer["queues"] == [queue], "read as a presence check, as the broker holds it"
    assert any('"undefined"' in c and "cannot tell" in c for c in answer["caveats"])
    sent = publish(managed_lab, exchange, properties={"headers": {"flag": 7}})
    assert (sent["predicted"], sent["routed"]) == ([queue], True)
    assert any("cannot tell" in note for note in sent["prediction_notes"])
