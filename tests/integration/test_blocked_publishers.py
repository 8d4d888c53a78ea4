"""A memory alarm on the broker (connection.blocked): publishes are refused at once with the broker's reason,
health and ``broker_status`` say so, and nothing hangs on a blocked connection (issue 15 item 9).

Before: a burst of 100 hung for more than 200 s, a single publish answered 503 after 10 s, health said "ok".
Runs on a private node of its own (the alarm is node-wide).
"""

from __future__ import annotations

import signal
import time

import pika
import pytest

from tests.conftest import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]

BLOCKED = "the broker is blocking publishers: memory alarm"


def timed_post(lab, path, body):
    started = time.monotonic()
    answer = lab.post(path, body)
    return answer, time.monotonic() - started


def test_a_memory_alarm_refuses_publishes_at_once_and_health_says_why(private_node, lab_factory, unique):
    lab = lab_factory(private_node.amqp_url).wait_broker_connected()
    queue = unique("alarm")
    with pika.BlockingConnection(pika.URLParameters(private_node.amqp_url)) as conn:
        conn.channel().queue_declare(queue)
    publish = {"routing_key": queue, "body": "x"}
    assert lab.post("/api/publish", publish).status_code == 200

    private_node.ctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        # The alarm starts within a few seconds: bursts go through until one meets it, and that one stops at once.
        def burst_refused():
            answer, took = timed_post(lab, "/api/publish", {**publish, "count": 100})
            assert took < 5, f"a burst took {took:.1f} s"
            return answer.status_code == 503 and answer.json()  # (a 503 Response itself is falsy)

        refused = wait_until(burst_refused, timeout=30, interval=0.2, message="a burst refused by the alarm")
        error = refused["error"]
        assert error["code"] == "BROKER_BLOCKED" and error["message"].startswith(BLOCKED), error
        assert error["hint"]

        # The publisher's own connection meets the alarm on its first publish: answered at once, not after 10 s.
        answer, took = timed_post(lab, "/api/publish", publish)
        assert answer.status_code == 503 and took < 3, (answer.text, took)
        assert answer.json()["error"]["message"].startswith(BLOCKED)
        # From now on the lab knows: refused before anything is sent, bursts too.
        for body in (publish, {**publish, "count": 100}):
            answer, took = timed_post(lab, "/api/publish", body)
            assert answer.status_code == 503 and took < 1, (answer.text, took)
            assert answer.json()["error"] == {
                "code": "BROKER_BLOCKED",
                "message": BLOCKED,
                "hint": answer.json()["error"]["hint"],
            }
        health = lab.get("/api/health").json()
        assert health["status"] == "degraded" and health["broker"]["blocked"] == BLOCKED
        assert health["broker"]["connected"]
    finally:
        private_node.ctl("set_vm_memory_high_watermark", "0.4")

    # The alarm clears: unblocked, health is ok again and publishing works.
    wait_until(lambda: lab.get("/api/health").json()["broker"]["blocked"] is None, timeout=30, message="unblocked")
    assert lab.get("/api/health").json()["status"] == "ok"
    wait_until(lambda: lab.post("/api/publish", publish).status_code == 200, timeout=30, message="publishing again")
    assert lab.post("/api/publish", {**publish, "count": 100}).json()["confirmed"]


def test_the_lab_stops_at_once_while_the_broker_blocks_it(private_node, lab_factory, unique):
    lab = lab_factory(private_node.amqp_url).wait_broker_connected()
    publish = {"routing_key": unique("nowhere"), "body": "x"}
    private_node.ctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        wait_until(
            lambda: lab.post("/api/publish", publish).status_code == 503, timeout=30, interval=0.2, message="blocked"
        )
        assert lab.get("/api/health").json()["broker"]["blocked"] == BLOCKED
        started = time.monotonic()
        lab.process.send_signal(signal.SIGTERM)
        lab.process.wait(20)
        took = time.monotonic() - started
        assert took < 8, f"stopping took {took:.1f} s: a close waited for the blocked connection"
    finally:
        private_node.ctl("set_vm_memory_high_watermark", "0.4")


def test_a_disk_alarm_is_said_as_such(private_node, lab_factory, unique):
    lab = lab_factory(private_node.amqp_url).wait_broker_connected()
    publish = {"routing_key": unique("nowhere"), "body": "x"}
    private_node.ctl("set_disk_free_limit", str(10**14))  # 100 TB free required: the disk alarm goes on
    try:
        refused = wait_until(
            lambda: (a := lab.post("/api/publish", publish)).status_code == 503 and a.json(), timeout=60, interval=0.2
        )
        assert refused["error"]["message"].startswith("the broker is blocking publishers: disk alarm"), refused
        assert lab.get("/api/health").json()["broker"]["blocked"] == "the broker is blocking publishers: disk alarm"
    finally:
        private_node.ctl("set_disk_free_limit", "50MB")
    wait_until(lambda: lab.get("/api/health").json()["broker"]["blocked"] is None, timeout=60, message="unblocked")


def test_a_publish_that_met_the_alarm_is_not_taken_for_a_stuck_owner_and_goes_out_when_it_clears(
    private_node, lab_factory, unique
):
    """Past the publisher's 10 s call timeout the owner only waits for the alarm: the lab keeps the connection (no
    recovery, health not "stuck"), so the message goes out once the alarm clears, and a published event says so."""
    from tests.integration.helpers import LiveEvents

    lab = lab_factory(private_node.amqp_url).wait_broker_connected()
    queue = unique("met-alarm")
    with pika.BlockingConnection(pika.URLParameters(private_node.amqp_url)) as conn:
        conn.channel().queue_declare(queue)
    publish = {"routing_key": queue, "body": "x"}
    assert lab.post("/api/publish", publish).status_code == 200
    live = LiveEvents(lab.base_url)
    try:
        private_node.ctl("set_vm_memory_high_watermark", "0.0000001")
        try:
            # The first publish that meets the alarm on its way (the ones before it go through).
            def met():
                answer = lab.post("/api/publish", publish)
                return answer.status_code == 503 and "met the alarm on its way" in answer.text and answer.json()

            error = wait_until(met, timeout=30, interval=0.2, message="a publish meeting the alarm")["error"]
            assert error["code"] == "BROKER_BLOCKED" and "within 30 s" in error["message"], error
            with pika.BlockingConnection(pika.URLParameters(private_node.amqp_url)) as conn:
                before = conn.channel().queue_declare(queue, passive=True).method.message_count
            published_before = len(live.of("published", lambda e: e["routing_key"] == queue))
            waited = time.monotonic()
            while time.monotonic() - waited < 13:  # past the 10 s call timeout, well within the 30 s
                health = lab.get("/api/health").json()
                assert health["stuck"] == [], health
                assert health["broker"]["blocked"] == BLOCKED, health
                time.sleep(0.5)
        finally:
            private_node.ctl("set_vm_memory_high_watermark", "0.4")
        wait_until(lambda: lab.get("/api/health").json()["broker"]["blocked"] is None, timeout=30, message="cleared")

        def depth():
            with pika.BlockingConnection(pika.URLParameters(private_node.amqp_url)) as conn:
                return conn.channel().queue_declare(queue, passive=True).method.message_count

        wait_until(lambda: depth() == before + 1, timeout=15, message="the message that met the alarm went out")
        late = live.wait_for("published", lambda e: e["routing_key"] == queue, count=published_before + 1)
        assert late[-1]["confirmed"] is True
        assert lab.post("/api/publish", publish).status_code == 200
    finally:
        live.close()
