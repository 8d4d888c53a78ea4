"""Bursts with many publishes waiting for their confirms, on the real broker: acks, nacks, returns, refusals, stop."""

from __future__ import annotations

import threading
from typing import Any

import pika
import pytest

from rabbit.burst import ConfirmedBurst
from rabbit.errors import BrokerError, BrokerUnavailable
from rabbit.publisher import ID_HEADER, Publisher, PublishRequest
from tests.conftest import wait_until
from tests.integration.helpers import declare_queue

pytestmark = pytest.mark.broker


@pytest.fixture
def publisher(broker_url):
    events: list[tuple[str, Any]] = []
    pub = Publisher(broker_url, lambda name, data: events.append((name, data))).start()
    pub.events = events
    yield pub
    pub.stop()


def depth(amqp, queue: str) -> int:
    return amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count


def test_a_mandatory_burst_with_no_route_comes_back_message_by_message(shared_lab, unique, live):
    answer = shared_lab.post(
        "/api/publish",
        {"exchange": "amq.direct", "routing_key": unique("nowhere"), "body": "x", "count": 300, "mandatory": True},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["counts"] == {
        "published": 300,
        "confirmed": 300,
        "nacked": 0,
        "routed": 0,
        "returned": 300,
        "dropped": 0,
    }
    assert result["confirmed"] is True and result["routed"] is False
    assert result["returned"]["reply_code"] == 312
    returned = live.wait_for("returned", lambda e: e["id"].startswith(result["id"] + "-"), count=300)
    assert {e["reply_text"] for e in returned} == {"NO_ROUTE"}


def test_without_mandatory_the_unroutable_copies_are_dropped_not_returned(shared_lab, unique):
    result = shared_lab.post(
        "/api/publish", {"exchange": "amq.direct", "routing_key": unique("nowhere"), "body": "x", "count": 250}
    ).json()
    assert result["counts"]["dropped"] == 250
    assert result["counts"]["returned"] == 0
    assert result["returned"] is None


def test_a_full_queue_that_rejects_publishes_nacks_the_overflow(shared_lab, amqp, unique):
    queue = declare_queue(amqp, unique("q"), arguments={"x-max-length": 10, "x-overflow": "reject-publish"})
    result = shared_lab.post("/api/publish", {"routing_key": queue, "body": "x", "count": 50}).json()
    assert result["counts"]["published"] == 50
    assert result["counts"]["routed"] == 10
    assert result["counts"]["nacked"] == 40
    assert result["counts"]["dropped"] == 0  # refused by the broker, not unroutable
    assert result["counts"]["returned"] == 0
    assert result["confirmed"] is False
    assert depth(amqp, queue) == 10
    single = shared_lab.post("/api/publish", {"routing_key": queue, "body": "one more"}).json()
    assert (single["confirmed"], single["routed"], single["dropped"]) == (False, False, False)


def test_a_burst_to_a_missing_exchange_is_404_and_the_next_burst_works(shared_lab, amqp, unique):
    answer = shared_lab.post(
        "/api/publish", {"exchange": unique("missing"), "routing_key": "k", "body": "x", "count": 500}
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"
    queue = declare_queue(amqp, unique("q"))
    again = shared_lab.post("/api/publish", {"routing_key": queue, "body": "x", "count": 500})
    assert again.status_code == 200
    assert again.json()["counts"]["routed"] == 500
    assert depth(amqp, queue) == 500


def test_an_exchange_deleted_mid_burst_stops_it_with_what_was_confirmed(publisher, amqp, unique):
    exchange = unique("x")
    channel = amqp.fresh_channel()
    channel.exchange_declare(exchange, "fanout", auto_delete=False)
    amqp.exchanges.append(exchange)
    queue = declare_queue(amqp, unique("q"))
    channel.queue_bind(queue, exchange)
    progress: list[dict[str, Any]] = []
    deleted = threading.Event()

    def on_progress(p: dict[str, Any]) -> None:
        progress.append(p)
        if not deleted.is_set():
            deleted.set()
            amqp.fresh_channel().exchange_delete(exchange)

    with pytest.raises(BrokerError) as caught:
        publisher.burst(PublishRequest(exchange, "", b"x"), 500_000, on_progress=on_progress)
    assert caught.value.code == "NOT_FOUND"
    confirmed = progress[-1]["confirmed"]
    assert 0 < confirmed < 500_000
    assert progress[-1]["done"] == confirmed
    # every confirmed copy reached the queue, and the lab reported each of them
    assert depth(amqp, queue) >= confirmed
    assert sum(1 for name, _ in publisher.events if name == "published") == confirmed


def test_never_more_than_the_window_waits_for_confirms(broker_url, amqp, unique):
    queue = declare_queue(amqp, unique("q"))
    waiting: list[int] = []
    confirmed: list[str] = []
    burst = None

    def make_message(number: int):
        waiting.append(burst.ledger.unconfirmed)
        return f"w-{number}", pika.BasicProperties(headers={ID_HEADER: f"w-{number}"}), 0.0

    burst = ConfirmedBurst(
        broker_url,
        exchange="",
        routing_key=queue,
        body=b"x",
        count=2000,
        make_message=make_message,
        id_of_return=lambda props: None,
        on_confirmed=lambda c: confirmed.append(c.message_id),
        window=16,
    )
    burst.run()
    assert len(waiting) == 2000
    assert max(waiting) == 15  # a publish happens only while fewer than the window wait
    assert confirmed == [f"w-{n}" for n in range(1, 2001)]
    assert depth(amqp, queue) == 2000


def test_large_bodies_keep_fewer_in_flight(broker_url, amqp, unique):
    queue = declare_queue(amqp, unique("q"))
    waiting: list[int] = []
    burst = None

    def make_message(number: int):
        waiting.append(burst.ledger.unconfirmed)
        return f"big-{number}", pika.BasicProperties(), 0.0

    burst = ConfirmedBurst(
        broker_url,
        exchange="",
        routing_key=queue,
        body=b"x" * 100_000,
        count=40,
        make_message=make_message,
        id_of_return=lambda props: None,
        on_confirmed=lambda c: None,
        max_bytes_in_flight=500_000,
    )
    assert burst.window == 5
    burst.run()
    assert max(waiting) <= 4
    assert depth(amqp, queue) == 40


def test_stopping_the_publisher_ends_a_running_burst(publisher, amqp, unique):
    queue = declare_queue(amqp, unique("q"))
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def run() -> None:
        try:
            publisher.burst(PublishRequest("", queue, b"x"), 2_000_000, on_progress=lambda p: started.set())
            outcome["result"] = "finished"
        except Exception as exc:
            outcome["result"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    publisher.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome["result"], BrokerUnavailable)
    assert "stopped" in outcome["result"].message
    with pytest.raises(BrokerUnavailable):  # a stopped publisher starts no new burst
        publisher.burst(PublishRequest("", queue, b"x"), 10)


def test_a_broker_that_cannot_be_reached_fails_the_burst_at_once():
    burst = ConfirmedBurst(
        "amqp://guest:guest@127.0.0.1:1/%2F",
        exchange="",
        routing_key="q",
        body=b"x",
        count=10,
        make_message=lambda n: (f"m-{n}", None, 0.0),
        id_of_return=lambda props: None,
        on_confirmed=lambda c: None,
    )
    with pytest.raises(BrokerUnavailable, match="cannot connect"):
        burst.run()


def test_burst_rate_is_reported(shared_lab, amqp, unique):
    queue = declare_queue(amqp, unique("q"))
    result = shared_lab.post("/api/publish", {"routing_key": queue, "body": "x", "count": 2000}).json()
    assert result["rate"] > 0
    assert result["seconds"] > 0
    wait_until(lambda: depth(amqp, queue) == 2000, message="all 2000 in the queue")
