"""A page whose live link drops and comes back re-syncs: it shows the deliveries it missed meanwhile."""

import pytest

pytestmark = pytest.mark.e2e


def test_deliveries_missed_while_offline_appear_after_the_reconnect(shared_lab, amqp, unique, page):
    queue = unique("offline")
    amqp.queues.append(queue)
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    consumer = shared_lab.post("/api/consumers", {"queue": queue, "ack": "auto"}).json()["id"]
    try:
        page.goto(shared_lab.base_url + "/#traffic")
        page.locator("section[data-panel='traffic'][data-ready='true']").wait_for(timeout=10000)
        panel = page.locator("section[data-panel='traffic']")

        page.context.set_offline(True)  # the browser loses the network: its websocket drops
        page.locator("#broker-status[data-state='offline']").wait_for(timeout=20000)
        missed = shared_lab.post("/api/publish", {"routing_key": queue, "body": "sent while you were away"}).json()
        page.context.set_offline(False)
        page.locator("#broker-status[data-state='connected']").wait_for(timeout=20000)

        row = panel.locator("#feed-rows tr[data-kind='delivery']", has_text=missed["id"])
        row.first.wait_for(timeout=10000)
        assert row.count() == 1
    finally:
        shared_lab.delete(f"/api/consumers/{consumer}")
