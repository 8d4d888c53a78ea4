"""A message's whole life on the real broker: GET /api/messages/<id>, and the route verification of the trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def made(shared_lab) -> Iterator[Callable[..., Any]]:
    """made(kind, body, lab=shared_lab): declare through the API; everything is deleted after the test."""
    undo: list[tuple[Any, str]] = []

    def make(kind: str, body: dict[str, Any], lab: Any = shared_lab) -> dict[str, Any]:
        answer = lab.post(f"/api/{kind}", body)
        assert answer.status_code == 201, answer.text
        if kind == "exchanges":
            undo.append((lab, f"/api/exchanges/{body['name']}"))
        elif kind == "queues":
            undo.append((lab, f"/api/queues/{body['name']}"))
        elif kind == "consumers":
            undo.append((lab, f"/api/consumers/{answer.json()['id']}"))
        elif kind == "taps":
            undo.append((lab, f"/api/taps/{answer.json()['id']}"))
        return answer.json()

    yield make
    for lab, path in reversed(undo):
        lab.delete(path)


def publish(lab, exchange: str, routing_key: str, **extra: Any) -> dict[str, Any]:
    answer = lab.post("/api/publish", {"exchange": exchange, "routing_key": routing_key, "body": "hi", **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def timeline_with(lab, message_id: str, *stages: str, timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the message's timeline holds each of ``stages`` (with repeats)."""

    def ready() -> dict[str, Any] | None:
        answer = lab.get(f"/api/messages/{message_id}")
        if answer.status_code != 200:
            return None
        have = [s["stage"] for s in answer.json()["stages"]]
        return answer.json() if all(have.count(s) >= stages.count(s) for s in set(stages)) else None

    return wait_until(ready, timeout=timeout, message=f"timeline of {message_id} with {stages}")


def names(timeline: dict[str, Any]) -> list[str]:
    return [s["stage"] for s in timeline["stages"]]


def without_confirm(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages but the confirm, which may be seen after the first delivery (a delivery can beat it)."""
    stages = timeline["stages"]
    assert names(timeline).count("confirmed") == 1
    assert names(timeline).index("confirmed") > names(timeline).index("published")
    return [s for s in stages if s["stage"] != "confirmed"]


def test_reject_then_dead_letter_is_the_whole_life_of_a_message(shared_lab, made, unique):
    exchange, work, dlx, dead = unique("tl-x"), unique("tl-work"), unique("tl-dlx"), unique("tl-dead")
    made("exchanges", {"name": exchange, "type": "topic"})
    made("exchanges", {"name": dlx, "type": "fanout"})
    made("queues", {"name": work, "arguments": {"x-dead-letter-exchange": dlx}})
    made("queues", {"name": dead})
    made("bindings", {"source": exchange, "destination": work, "routing_key": "*.orange.*"})
    made("bindings", {"source": dlx, "destination": dead})
    rejecter = made("consumers", {"queue": work, "on_message": "reject"})["id"]
    acker = made("consumers", {"queue": dead})["id"]

    sent = publish(shared_lab, exchange, "quick.orange.rabbit", properties={"headers": {"colour": "orange"}})
    timeline = timeline_with(shared_lab, sent["id"], "delivered", "delivered", "acked", "dead_lettered")

    assert timeline["id"] == sent["id"]
    assert timeline["exchange"] == exchange
    assert timeline["routing_key"] == "quick.orange.rabbit"
    assert timeline["properties"]["headers"] == {"colour": "orange"}  # the lab's own headers left out
    stages = without_confirm(timeline)
    assert [s["stage"] for s in stages] == [
        "published",
        "routed",
        "queued",
        "delivered",
        "rejected",
        "dead_lettered",
        "queued",
        "delivered",
        "acked",
    ]
    assert [s["at"] for s in timeline["stages"]] == sorted(s["at"] for s in timeline["stages"])
    routed = stages[1]
    assert routed["binding"]["routing_key"] == "*.orange.*"
    assert routed["destination"] == work
    assert routed["source"] == "prediction"
    assert [step["words"] for step in routed["explanation"]["steps"]] == [["quick"], ["orange"], ["rabbit"]]
    assert stages[2]["queue"] == work
    assert stages[3]["queue"] == work and stages[3]["consumer_id"] == rejecter
    assert stages[3]["redelivered"] is False and isinstance(stages[3]["delivery_tag"], int)
    assert stages[4]["consumer_id"] == rejecter
    dead_lettered = stages[5]
    assert dead_lettered["from_queue"] == work
    assert dead_lettered["to_exchange"] == dlx
    assert dead_lettered["routing_key"] == "quick.orange.rabbit"
    assert dead_lettered["reason"] == "rejected"
    assert stages[6]["queue"] == dead
    assert stages[7]["consumer_id"] == acker and stages[7]["queue"] == dead
    assert stages[8]["consumer_id"] == acker


def test_a_mandatory_return_and_nothing_invented(shared_lab, made, unique):
    exchange = unique("tl-ret")
    made("exchanges", {"name": exchange, "type": "direct"})
    sent = publish(shared_lab, exchange, "nobody", mandatory=True)
    assert sent["returned"]
    timeline = timeline_with(shared_lab, sent["id"], "returned")
    assert names(timeline) == ["published", "confirmed", "unroutable", "returned"]
    returned = timeline["stages"][-1]
    assert returned["reply_code"] == 312
    assert returned["reply_text"] == "NO_ROUTE"
    assert timeline["stages"][0]["mandatory"] is True


def test_an_expired_message_is_dead_lettered_with_its_reason(shared_lab, made, unique):
    short, dlx, dead = unique("tl-ttl"), unique("tl-ttl-dlx"), unique("tl-ttl-dead")
    made("exchanges", {"name": dlx, "type": "fanout"})
    made("queues", {"name": short, "arguments": {"x-message-ttl": 50, "x-dead-letter-exchange": dlx}})
    made("queues", {"name": dead})
    made("bindings", {"source": dlx, "destination": dead})
    made("consumers", {"queue": dead})
    sent = publish(shared_lab, "", short)
    timeline = timeline_with(shared_lab, sent["id"], "acked")
    assert [s["stage"] for s in without_confirm(timeline)] == [
        "published",
        "routed",
        "expired",
        "dead_lettered",
        "queued",
        "delivered",
        "acked",
    ]
    stages = without_confirm(timeline)
    assert stages[1]["destination"] == short  # the default exchange: the queue named by the key
    assert stages[2]["queue"] == short
    assert stages[3]["reason"] == "expired"
    assert stages[3]["from_queue"] == short


def test_an_unknown_id_is_404_in_plain_words(shared_lab):
    answer = shared_lab.get("/api/messages/m-000000000000")
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "NOT_FOUND"
    assert "RABBITLENS_MESSAGES_KEPT" in error["message"]


# A plain pika application that knows nothing of the lab: it publishes to an exchange the test made.
PLAIN_PUBLISHER = textwrap.dedent(
    """
    import sys, pika
    url, exchange = sys.argv[1:3]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for key in sys.argv[3:]:
        channel.basic_publish(exchange, key, b"from elsewhere", pika.BasicProperties(headers={"app": "plain"}))
    connection.close()
    """
)


def test_trace_verifies_another_application_s_publishes_and_fills_timelines(managed_lab, managed_node, unique):
    lab = managed_lab
    exchange, one, two = unique("ver-x"), unique("ver-a"), unique("ver-b")
    undo = [f"/api/exchanges/{exchange}", f"/api/queues/{one}", f"/api/queues/{two}"]
    tap = None
    try:
        assert lab.post("/api/exchanges", {"name": exchange, "type": "topic"}).status_code == 201
        for queue, key in ((one, "*.orange.*"), (two, "lazy.#")):
            assert lab.post("/api/queues", {"name": queue}).status_code == 201
            body = {"source": exchange, "destination": queue, "routing_key": key}
            assert lab.post("/api/bindings", body).status_code == 201
        tap = lab.post("/api/taps", {"exchange": exchange, "binding_key": "#.rabbit"}).json()
        assert lab.post("/api/trace", {"enabled": True}).status_code == 200
        before = lab.get("/api/route/verification").json()
        assert before["trace_enabled"] is True

        keys = ["quick.orange.rabbit", "lazy.orange.elephant", "lazy.brown.fox", "quick.brown.fox"]
        command = [sys.executable, "-c", PLAIN_PUBLISHER, managed_node.amqp_url, exchange, *keys]
        subprocess.run(command, check=True, timeout=30)
        after = wait_until(
            lambda: (v := lab.get("/api/route/verification").json())["checked"] >= before["checked"] + 4 and v,
            message="four traced publishes verified",
        )
        assert after["agreed"] - before["agreed"] == after["checked"] - before["checked"]
        assert after["disagreed"] == before["disagreed"]  # the tap's queue counted on both sides

        # The lab's own publish: queued comes from the broker's routed_queues (the tap's queue marked the lab's).
        sent = publish(lab, exchange, "lazy.orange.rabbit")
        timeline = timeline_with(lab, sent["id"], "queued", "queued", "queued")
        queued = {s["queue"]: s for s in timeline["stages"] if s["stage"] == "queued"}
        assert set(queued) == {one, two, tap["queue"]}
        assert queued[one]["source"] == "trace"
        assert queued[tap["queue"]]["lab"] == "tap"
        routed = [s for s in timeline["stages"] if s["stage"] == "routed"]
        assert sorted(s["destination"] for s in routed) == sorted([one, two, tap["queue"]])
        assert "delivered" not in names(timeline)  # no consumer took it: nothing invented
    finally:
        lab.post("/api/trace", {"enabled": False})
        if tap is not None:
            lab.delete(f"/api/taps/{tap['id']}")
        for path in undo:
            lab.delete(path)
