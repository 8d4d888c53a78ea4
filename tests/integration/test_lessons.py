"""The seeds' lessons, each played through the lab's API on a real broker, as a learner would in the page.

Topology is declared through the lab's own topology API, so the routing engine's ``predicted`` queues can be
checked against where the broker really delivered.
"""

from __future__ import annotations

from typing import Any

import pika
import pytest

from tests.conftest import wait_until
from tests.integration.helpers import LiveEvents
from tests.integration.test_consumers import consumer_state, wait_for_counter

pytestmark = pytest.mark.broker


class Lesson:
    """Declares through the lab, starts consumers, publishes, and removes everything afterwards."""

    def __init__(self, lab) -> None:
        self.lab = lab
        self.exchanges: list[str] = []
        self.queues: list[str] = []
        self.consumer_ids: list[str] = []

    def ok(self, answer) -> Any:
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None

    def exchange(self, name: str, kind: str) -> str:
        self.ok(self.lab.post("/api/exchanges", {"name": name, "type": kind}))
        self.exchanges.append(name)
        return name

    def queue(self, name: str, durable: bool = False) -> str:
        self.ok(self.lab.post("/api/queues", {"name": name, "durable": durable}))
        self.queues.append(name)
        return name

    def bind(self, exchange: str, queue: str, key: str = "") -> None:
        body = {"source": exchange, "destination": queue, "destination_type": "queue", "routing_key": key}
        self.ok(self.lab.post("/api/bindings", body))

    def consume(self, queue: str, **knobs: Any) -> str:
        consumer_id = self.ok(self.lab.post("/api/consumers", {"queue": queue, **knobs}))["id"]
        self.consumer_ids.append(consumer_id)
        return consumer_id

    def publish(self, exchange: str, routing_key: str = "", body: str = "x", **extra: Any) -> dict[str, Any]:
        request = {"exchange": exchange, "routing_key": routing_key, "body": body, **extra}
        return self.ok(self.lab.post("/api/publish", request))

    def cleanup(self) -> None:
        for consumer_id in self.consumer_ids:
            self.lab.delete(f"/api/consumers/{consumer_id}")
        for name in self.queues:
            self.lab.delete(f"/api/queues/{name}")
        for name in self.exchanges:
            self.lab.delete(f"/api/exchanges/{name}")


@pytest.fixture
def lesson(shared_lab):
    helper = Lesson(shared_lab)
    yield helper
    helper.cleanup()


def delivered_queues(live: LiveEvents, message_id: str, count: int) -> list[str]:
    return sorted(d["queue"] for d in live.wait_for("delivery", lambda e: e["id"] == message_id, count=count))


def test_simple_queue_hello_world(lesson, live, unique):
    queue = lesson.queue(unique("hello"))
    consumer = lesson.consume(queue, ack="auto")
    sent = lesson.publish("", queue, "Hello World!")
    assert sent["predicted"] == [queue]
    delivery = live.wait_for("delivery", lambda e: e["id"] == sent["id"])[0]
    assert delivery["consumer_id"] == consumer
    assert delivery["body"]["text"] == "Hello World!"


def test_manual_ack_survives_a_crashing_worker_and_auto_ack_loses_the_message(lesson, live, unique, shared_lab, amqp):
    queue = lesson.queue(unique("tasks"))
    crasher = lesson.consume(queue, ack="manual", prefetch=1, on_message="crash")
    sent = lesson.publish("", queue, "important")
    live.wait_for("consumer", lambda e: e["id"] == crasher and e["change"] == "crashed")
    state = consumer_state(shared_lab, crasher)
    assert (state["state"], state["handled"], state["acked"]) == ("crashed", 1, 0)
    survivor = lesson.consume(queue, ack="manual")
    again = live.wait_for("delivery", lambda e: e["id"] == sent["id"] and e["consumer_id"] == survivor)[0]
    assert again["redelivered"] is True
    wait_for_counter(shared_lab, survivor, "acked", 1)

    lost_queue = lesson.queue(unique("auto"))
    auto_crasher = lesson.consume(lost_queue, ack="auto", on_message="crash")
    lost = lesson.publish("", lost_queue, "gone")
    live.wait_for("consumer", lambda e: e["id"] == auto_crasher and e["change"] == "crashed")
    assert consumer_state(shared_lab, auto_crasher)["acked"] == 1  # acked on delivery, before the "work"
    assert amqp.fresh_channel().queue_declare(lost_queue, passive=True).method.message_count == 0
    assert len(live.of("delivery", lambda e: e["id"] == lost["id"])) == 1


def test_round_robin_without_prefetch_and_fair_dispatch_with_prefetch_one(lesson, unique, shared_lab):
    queue = lesson.queue(unique("work"))
    fast = lesson.consume(queue, work_ms=0, prefetch=0)
    slow = lesson.consume(queue, work_ms=400, prefetch=0)
    lesson.publish("", queue, "task", count=8)
    wait_until(
        lambda: consumer_state(shared_lab, fast)["acked"] + consumer_state(shared_lab, slow)["acked"] == 8,
        timeout=20,
        message="8 tasks done",
    )
    # Without prefetch the broker deals the messages out in turn, whatever each consumer's speed.
    assert consumer_state(shared_lab, fast)["handled"] == 4
    assert consumer_state(shared_lab, slow)["handled"] == 4

    fair_queue = lesson.queue(unique("fair"))
    fast = lesson.consume(fair_queue, work_ms=0, prefetch=1)
    slow = lesson.consume(fair_queue, work_ms=1000, prefetch=1)
    lesson.publish("", fair_queue, "task", count=8)
    wait_until(
        lambda: consumer_state(shared_lab, fast)["acked"] + consumer_state(shared_lab, slow)["acked"] == 8,
        timeout=20,
        message="8 fair tasks done",
    )
    # With prefetch 1 the busy consumer gets no new message until it acks: the fast one does the rest.
    assert consumer_state(shared_lab, slow)["handled"] <= 2
    assert consumer_state(shared_lab, fast)["handled"] >= 6


def test_fanout_copies_to_every_bound_queue(lesson, live, unique):
    exchange = lesson.exchange(unique("logs"), "fanout")
    queues = sorted(lesson.queue(unique(f"log{n}")) for n in range(2))
    for queue in queues:
        lesson.bind(exchange, queue)
        lesson.consume(queue, ack="auto")
    sent = lesson.publish(exchange, "ignored", "a log line")
    assert sent["routed"] is True
    assert sent["predicted"] == queues
    assert delivered_queues(live, sent["id"], 2) == queues


def test_direct_routes_by_exact_key(lesson, live, unique):
    exchange = lesson.exchange(unique("direct-logs"), "direct")
    errors = lesson.queue(unique("errors"))
    everything = lesson.queue(unique("all"))
    lesson.bind(exchange, errors, "error")
    for severity in ("info", "warning", "error"):
        lesson.bind(exchange, everything, severity)
    for queue in (errors, everything):
        lesson.consume(queue, ack="auto")
    error = lesson.publish(exchange, "error", "disk full")
    info = lesson.publish(exchange, "info", "started")
    debug = lesson.publish(exchange, "debug", "noise", mandatory=True)
    assert error["predicted"] == sorted([errors, everything])
    assert delivered_queues(live, error["id"], 2) == sorted([errors, everything])
    assert info["predicted"] == [everything]
    assert delivered_queues(live, info["id"], 1) == [everything]
    assert (debug["predicted"], debug["routed"], debug["returned"]["reply_text"]) == (None, False, "NO_ROUTE")


def test_topic_star_is_one_word_and_hash_is_zero_or_more(lesson, live, unique):
    exchange = lesson.exchange(unique("topic"), "topic")
    orange = lesson.queue(unique("orange"))
    lazy = lesson.queue(unique("lazy"))
    lesson.bind(exchange, orange, "*.orange.*")
    lesson.bind(exchange, lazy, "*.*.rabbit")
    lesson.bind(exchange, lazy, "lazy.#")
    for queue in (orange, lazy):
        lesson.consume(queue, ack="auto")
    cases = {
        "quick.orange.rabbit": sorted([orange, lazy]),
        "lazy.orange.elephant": sorted([orange, lazy]),
        "quick.orange.fox": [orange],
        "lazy.brown.fox": [lazy],
        "lazy": [lazy],
        "lazy.pink.rabbit": [lazy],  # two bindings match, one copy
    }
    for key, expected in cases.items():
        sent = lesson.publish(exchange, key, key)
        assert sent["predicted"] == expected, key
        assert delivered_queues(live, sent["id"], len(expected)) == expected, key
    for key in ("quick.brown.fox", "orange", "quick.orange.male.rabbit"):
        sent = lesson.publish(exchange, key, key, mandatory=True)
        assert (sent["predicted"], sent["routed"]) == (None, False), key  # unknown without management
        assert sent["returned"]["reply_code"] == 312
    # every delivery above came once per queue: no duplicates for lazy.pink.rabbit
    pink = [d for d in live.of("delivery") if d["routing_key"] == "lazy.pink.rabbit"]
    assert len(pink) == 1


def test_mandatory_message_without_a_queue_is_returned(lesson, live, unique):
    exchange = lesson.exchange(unique("nowhere"), "direct")
    sent = lesson.publish(exchange, "no.binding", "come back", mandatory=True)
    assert (sent["routed"], sent["returned"]["reply_code"]) == (False, 312)
    live.wait_for("returned", lambda e: e["id"] == sent["id"])


def test_a_markup_body_travels_as_plain_text(lesson, live, unique):
    queue = lesson.queue(unique("xss"))
    lesson.consume(queue, ack="auto")
    body = "<img src=x onerror=alert(1)>"
    sent = lesson.publish("", queue, body, properties={"content_type": "text/html"})
    delivery = live.wait_for("delivery", lambda e: e["id"] == sent["id"])[0]
    assert delivery["body"]["text"] == body
    assert delivery["body"]["kind"] == "text"


@pytest.mark.private_node
def test_durable_queue_and_persistent_message_survive_a_restart(private_node, lab_factory, unique):
    lab = lab_factory(private_node.amqp_url)
    lesson = Lesson(lab)
    queue = lesson.queue(unique("durable"), durable=True)
    kept = lesson.publish("", queue, "persistent", properties={"delivery_mode": 2})
    lesson.publish("", queue, "transient", properties={"delivery_mode": 1})
    transient_queue = lesson.queue(unique("transient"), durable=False)
    lesson.publish("", transient_queue, "persistent but in a transient queue", properties={"delivery_mode": 2})

    private_node.restart()

    with pika.BlockingConnection(pika.URLParameters(private_node.amqp_url)) as connection:
        channel = connection.channel()
        assert channel.queue_declare(queue, durable=True, passive=True).method.message_count == 1
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:
            channel.queue_declare(transient_queue, passive=True)
        assert gone.value.reply_code == 404
    events = LiveEvents(lab.base_url)
    try:
        wait_until(lambda: lab.get("/api/health").json()["broker"]["connected"], timeout=20, message="lab back")
        lesson.consume(queue, ack="manual")
        delivery = events.wait_for("delivery", lambda e: e["queue"] == queue)[0]
        assert delivery["id"] == kept["id"]
        assert delivery["body"]["text"] == "persistent"
        assert delivery["properties"]["delivery_mode"] == 2
    finally:
        events.close()
        lesson.cleanup()
