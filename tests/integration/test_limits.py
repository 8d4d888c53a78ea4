"""Limits hold under concurrent requests (issue 15 item 3): real concurrent HTTP requests against a real lab process.

Each limit used to be checked with ``len(things) >= limit`` and enforced by adding the thing once it had started, so
every request that checked while the others were still starting saw room (500 concurrent taps under a limit of 20).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.integration.helpers import declare_queue


def post_all(url: str, bodies: list[dict], timeout: float = 60.0) -> list[requests.Response]:
    """POST every body at once (one thread each), so that the server sees them concurrently."""
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: requests.post(url, json=body, timeout=timeout), bodies))


def test_concurrent_taps_never_exceed_the_limit(lab_factory, broker_url):
    lab = lab_factory(broker_url).wait_broker_connected()
    answers = post_all(lab.base_url + "/api/taps", [{"exchange": "amq.fanout", "binding_key": ""}] * 60)
    statuses = Counter(r.status_code for r in answers)
    assert statuses[201] == 20, statuses  # the default limit (RABBITLENS_MAX_TAPS), not one more
    assert statuses[409] == 40, statuses
    refused = next(r for r in answers if r.status_code == 409).json()["error"]
    assert "at most 20 taps" in refused["message"] and refused["limit"] == 20
    taps = lab.get("/api/taps").json()
    assert len(taps) == 20
    for tap in taps:  # and the slots come back
        assert lab.delete(f"/api/taps/{tap['id']}").status_code == 204
    again = lab.post("/api/taps", {"exchange": "amq.fanout"})
    assert again.status_code == 201, again.text


def test_the_tap_limit_is_a_setting(lab_factory, broker_url):
    lab = lab_factory(broker_url, RABBITLENS_MAX_TAPS="3").wait_broker_connected()
    answers = post_all(lab.base_url + "/api/taps", [{"exchange": "amq.fanout"}] * 12)
    assert Counter(r.status_code for r in answers) == {201: 3, 409: 9}
    assert "RABBITLENS_MAX_TAPS" in next(r for r in answers if r.status_code == 409).json()["error"]["message"]


def test_concurrent_consumers_never_exceed_the_limit(lab_factory, broker_url, amqp, unique):
    queue = declare_queue(amqp, unique("limit-consumers"))
    lab = lab_factory(broker_url, RABBITLENS_MAX_CONSUMERS="6").wait_broker_connected()
    answers = post_all(lab.base_url + "/api/consumers", [{"queue": queue}] * 30)
    assert Counter(r.status_code for r in answers) == {201: 6, 400: 24}
    assert len(lab.get("/api/consumers").json()) == 6
    assert amqp.fresh_channel().queue_declare(queue, passive=True).method.consumer_count == 6


def test_concurrent_publish_bursts_are_limited(lab_factory, broker_url, amqp, unique):
    queue = declare_queue(amqp, unique("limit-bursts"))
    lab = lab_factory(broker_url, RABBITLENS_PUBLISH_MAX_BURSTS="2").wait_broker_connected()
    burst = {"exchange": "", "routing_key": queue, "body": "x" * 2000, "count": 10_000}
    answers = post_all(lab.base_url + "/api/publish", [burst] * 8, timeout=120)
    statuses = Counter(r.status_code for r in answers)
    assert statuses[409] >= 1, statuses  # 8 bursts asked for at once: not all 8 may run
    assert statuses[200] >= 2, statuses
    assert set(statuses) <= {200, 409}, statuses
    refused = next(r for r in answers if r.status_code == 409).json()["error"]
    assert "RABBITLENS_PUBLISH_MAX_BURSTS" in refused["message"]
    confirmed = sum(r.json()["counts"]["confirmed"] for r in answers if r.status_code == 200)
    assert confirmed == statuses[200] * 10_000
    assert amqp.fresh_channel().queue_declare(queue, passive=True).method.message_count == confirmed


def test_concurrent_fib_server_starts_never_exceed_the_limit(lab_factory, broker_url, amqp, unique):
    queue = declare_queue(amqp, unique("limit-servers"))
    lab = lab_factory(broker_url).wait_broker_connected()
    answers = post_all(lab.base_url + "/api/rpc/servers", [{"count": 3, "queue": queue}] * 4)
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 2, 400: 2}, statuses  # 8 servers at most: two starts of 3 fit, a third does not
    servers = lab.get("/api/rpc/servers").json()["servers"]
    assert len(servers) == 6
    for server in servers:
        lab.delete(f"/api/rpc/servers/{server['id']}?kill=1")


def test_the_fib_server_limit_is_a_setting(lab_factory, broker_url, amqp, unique):
    queue = declare_queue(amqp, unique("limit-servers-setting"))
    lab = lab_factory(broker_url, RABBITLENS_RPC_MAX_SERVERS="2").wait_broker_connected()
    answers = post_all(lab.base_url + "/api/rpc/servers", [{"count": 1, "queue": queue}] * 4)
    assert Counter(r.status_code for r in answers) == {201: 2, 400: 2}
    refused = next(r for r in answers if r.status_code == 400).json()["error"]
    assert "RABBITLENS_RPC_MAX_SERVERS" in refused["message"] and refused["limit"] == 2
