"""Click a feed row, see the message's whole life: stages, offsets, the binding that matched word by word."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.e2e.test_traffic_page import open_traffic

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_a_feed_row_opens_the_message_s_timeline(shared_lab, page, unique):
    exchange, queue = unique("tl-page-x"), unique("tl-page-<b>q</b>")
    consumer = None
    try:
        assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "topic"}).status_code == 201
        assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
        binding = {"source": exchange, "destination": queue, "routing_key": "*.orange.*"}
        assert shared_lab.post("/api/bindings", binding).status_code == 201
        consumer = shared_lab.post("/api/consumers", {"queue": queue}).json()["id"]
        panel = open_traffic(page, shared_lab)

        form = panel.locator("#publish-form")
        form.get_by_label("Exchange", exact=True).fill(exchange)
        form.get_by_label("Routing key", exact=True).fill("quick.orange.rabbit")
        form.get_by_role("button", name="Publish").click()
        panel.locator("#publish-result", has_text="Confirmed").wait_for(timeout=10000)
        message_id = panel.locator("#publish-result code").inner_text()
        wait_until(
            lambda: any(s["stage"] == "acked" for s in shared_lab.get(f"/api/messages/{message_id}").json()["stages"]),
            message="the ack in the timeline",
        )

        panel.locator("#feed-rows tr[data-kind='delivery']", has_text=message_id).first.click()
        timeline = panel.locator("#message-detail .timeline")
        timeline.locator("li[data-stage='acked']").wait_for(timeout=10000)
        stages = timeline.locator("li.tl-stage")
        api_stages = [s["stage"] for s in shared_lab.get(f"/api/messages/{message_id}").json()["stages"]]
        assert stages.evaluate_all("items => items.map(i => i.dataset.stage)") == api_stages
        assert set(api_stages) == {"published", "routed", "confirmed", "queued", "delivered", "acked"}
        assert stages.first.locator(".tl-at").inner_text() == "+0 ms"

        routed = timeline.locator("li[data-stage='routed']")
        assert "*.orange.*" in routed.locator(".tl-binding").inner_text()
        words = routed.locator(".tl-words li.ok").all_inner_texts()
        assert [w.replace(" ", "") for w in words] == ["*=quick", "orange=orange", "*=rabbit"]
        delivered = timeline.locator("li[data-stage='delivered']").inner_text()
        assert consumer in delivered and queue in delivered  # the queue's markup shown as text
        assert panel.locator("#message-detail b").count() == 0
        panel.locator("#message-detail").screenshot(path="/tmp/timeline-detail.png")
        assert page.js_errors == []
    finally:
        if consumer:
            shared_lab.delete(f"/api/consumers/{consumer}")
        shared_lab.delete(f"/api/queues/{queue}")
        shared_lab.delete(f"/api/exchanges/{exchange}")


def test_the_trace_card_counts_what_the_broker_and_the_engine_agreed_on(managed_lab, managed_node, page, unique):
    import pika

    from tests.e2e.test_watch_page import open_watch

    exchange, queue = unique("ver-page-x"), unique("ver-page-q")
    assert managed_lab.post("/api/exchanges", {"name": exchange, "type": "direct"}).status_code == 201
    assert managed_lab.post("/api/queues", {"name": queue}).status_code == 201
    binding = {"source": exchange, "destination": queue, "routing_key": "k"}
    assert managed_lab.post("/api/bindings", binding).status_code == 201
    try:
        section = open_watch(page, managed_lab.base_url)
        assert managed_lab.post("/api/trace", {"enabled": True}).status_code == 200
        box = section.locator("#trace-card [data-verification]")
        box.wait_for(timeout=10000)
        checked = managed_lab.get("/api/route/verification").json()["checked"]
        connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
        try:
            channel = connection.channel()
            for key in ("k", "other"):
                channel.basic_publish(exchange, key, b"from a plain application")
        finally:
            connection.close()
        page.wait_for_function(
            f"() => Number(document.querySelector('[data-verification]').dataset.checked) >= {checked + 2}",
            timeout=15000,
        )
        summary = managed_lab.get("/api/route/verification").json()
        assert [d for d in summary["disagreed"] if d["exchange"] == exchange] == [], summary
        assert box.get_attribute("data-disagreed") == str(summary["disagreed_total"])
        assert "agreed" in box.locator(".tl-verify-counts").inner_text()
        assert page.js_errors == []
    finally:
        managed_lab.post("/api/trace", {"enabled": False})
        managed_lab.delete(f"/api/queues/{queue}")
        managed_lab.delete(f"/api/exchanges/{exchange}")
