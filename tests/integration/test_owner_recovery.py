"""A connection owner that stops getting answers, in a real lab process (gevent): health turns "degraded" while it is
stuck, the request answers 503 at its timeout, the owner is replaced, and once the broker answers again the next
request is served at once (issue 15.1). The broker is frozen with SIGSTOP: a private node only."""

import os
import signal
import threading
import time

import pytest

from tests.conftest import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]


def freeze(node, sig: signal.Signals) -> None:
    os.killpg(node._process.pid, sig)


def test_a_stuck_main_link_is_reported_and_replaced(private_node, lab_factory, unique):
    lab = lab_factory(private_node.amqp_url, RABBITLENS_BROKER_TIMEOUT_S="6").wait_broker_connected()
    assert lab.get("/api/health").json()["status"] == "ok"
    answers = []
    frozen = True
    freeze(private_node, signal.SIGSTOP)
    try:
        caller = threading.Thread(
            target=lambda: answers.append(lab.post("/api/queues", json={"name": unique("frozen")}))
        )
        caller.start()

        def degraded_and_stuck() -> bool:
            health = lab.get("/api/health").json()
            return health["status"] == "degraded" and any(s["name"] == "rabbitlens" for s in health["stuck"])

        wait_until(degraded_and_stuck, timeout=6, message="health degraded with the main link stuck")
        caller.join(15)
        assert answers and answers[0].status_code == 503
        assert "did not answer within 6 s" in answers[0].json()["error"]["message"]
        health = lab.get("/api/health").json()
        assert health["status"] == "degraded" and health["broker"]["recoveries"] == 1
        freeze(private_node, signal.SIGCONT)
        frozen = False
        wait_until(lambda: lab.get("/api/health").json()["status"] == "ok", timeout=30, message="health ok again")
        started = time.monotonic()
        name = unique("thawed")
        response = lab.post("/api/queues", json={"name": name})
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < 1.0
        lab.delete(f"/api/queues/{name}")
        assert lab.get("/api/health").json()["broker"]["stuck"] is False
    finally:
        if frozen:
            freeze(private_node, signal.SIGCONT)
