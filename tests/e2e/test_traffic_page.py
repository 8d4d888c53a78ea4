"""The traffic panel in a real chromium: consumers and a fanout publish through the page, the feed, the detail."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def fanout(shared_lab, unique):
    """A fanout exchange with two bound queues, declared through the lab (so predictions know them)."""
    exchange, queues = unique("fan"), [unique("fan-a"), unique("fan-b")]
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "fanout"}).status_code == 201
    for queue in queues:
        assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
        binding = {"source": exchange, "destination": queue, "destination_type": "queue", "routing_key": ""}
        assert shared_lab.post("/api/bindings", binding).status_code == 201
    yield exchange, queues
    for consumer in shared_lab.get("/api/consumers").json():
        if consumer["queue"] in queues:
            shared_lab.delete(f"/api/consumers/{consumer['id']}")
    for queue in queues:
        shared_lab.delete(f"/api/queues/{queue}")
    shared_lab.delete(f"/api/exchanges/{exchange}")


def open_traffic(page, lab):
    page.goto(lab.base_url + "/#traffic")
    page.locator("#broker-status[data-state='connected']").wait_for(timeout=10000)
    panel = page.locator("section[data-panel='traffic'][data-ready='true']")  # its module has started
    panel.wait_for(state="visible")
    return panel


def start_consumer(panel, queue: str) -> None:
    form = panel.locator("#consumer-form")
    form.get_by_label("Queue", exact=True).fill(queue)
    form.get_by_role("button", name="Start").click()
    panel.locator(
        f"#consumer-list li:has(.consumer-queue:text-is('{queue}')) .state-badge", has_text="consuming"
    ).wait_for(timeout=10000)


def publish(panel, routing_key: str, body: str):
    """Publish ``body`` with ``routing_key`` through the panel's publish form (returned for more)."""
    form = panel.locator("#publish-form")
    form.get_by_label("Routing key", exact=True).fill(routing_key)
    form.get_by_label("Body", exact=True).fill(body)
    form.get_by_role("button", name="Publish").click()
    return form


def first_delivery(panel):
    """The feed's newest delivery row, once it is there."""
    row = panel.locator("#feed-rows tr[data-kind='delivery']").first
    row.wait_for(timeout=10000)
    return row


def delete_queue_and_consumers(lab, queue: str) -> None:
    for consumer in lab.get("/api/consumers").json():
        if consumer["queue"] == queue:
            lab.delete(f"/api/consumers/{consumer['id']}")
    lab.delete(f"/api/queues/{queue}")


def test_a_fanout_publish_from_the_page_reaches_both_consumers(shared_lab, page, fanout):
    exchange, queues = fanout
    panel = open_traffic(page, shared_lab)
    assert panel.locator("#feed-empty").is_visible()
    for queue in queues:
        start_consumer(panel, queue)

    form = panel.locator("#publish-form")
    form.get_by_label("Exchange", exact=True).fill(exchange)
    form.get_by_label("Body", exact=True).fill('{"hello": "fanout"}')
    form.get_by_label("content_type", exact=True).fill("application/json")
    form.get_by_role("button", name="Publish").click()
    panel.locator("#publish-result", has_text="Confirmed").wait_for(timeout=10000)
    message_id = panel.locator("#publish-result code").inner_text()

    deliveries = panel.locator("#feed-rows tr[data-kind='delivery']", has_text=message_id)
    deliveries.nth(1).wait_for(timeout=10000)
    assert deliveries.count() == 2
    assert sorted(deliveries.locator("td:nth-child(5) .q").all_inner_texts()) == sorted(queues)
    assert deliveries.locator(".verdict.bad").count() == 0
    published = panel.locator("#feed-rows tr[data-kind='published']", has_text=message_id)
    published.locator(".verdict.good").wait_for(timeout=5000)
    assert ", ".join(sorted(queues)) in published.locator(".verdict").inner_text()
    assert panel.locator("#feed-stats").inner_text().count("delivered 2") == 1

    page.screenshot(path="/tmp/traffic.png", full_page=False)
    deliveries.first.click()
    detail = panel.locator("#message-detail")
    detail.wait_for(state="visible")
    assert '"hello": "fanout"' in detail.locator(".body-pre").last.inner_text()
    page.screenshot(path="/tmp/traffic-detail.png", full_page=False)
    page.keyboard.press("Escape")
    assert detail.is_hidden()
    assert page.js_errors == []


def test_a_markup_body_shows_as_text_and_an_unroutable_message_is_marked(shared_lab, page, unique):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    queue = unique("xss")
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    try:
        panel = open_traffic(page, shared_lab)
        start_consumer(panel, queue)
        form = publish(panel, queue, XSS)
        row = first_delivery(panel)
        assert XSS in row.inner_text()
        row.focus()
        page.keyboard.press("Enter")
        body = panel.locator("#message-detail .body-pre").last
        body.wait_for()
        assert body.inner_text() == XSS
        assert panel.locator("img").count() == 0

        form.get_by_label("Routing key", exact=True).fill(unique("nobody-home"))
        form.get_by_label("Body", exact=True).fill("lost")
        form.get_by_label("mandatory", exact=True).check()
        form.get_by_role("button", name="Publish").click()
        panel.locator("#publish-result", has_text="Returned").wait_for(timeout=10000)
        panel.locator("#feed-rows tr[data-kind='returned']").first.wait_for(timeout=10000)
        assert "unroutable" in panel.locator("#feed-rows tr[data-kind='published']").first.inner_text()
        assert dialogs == []
        assert page.js_errors == []
    finally:
        delete_queue_and_consumers(shared_lab, queue)


def test_a_burst_into_a_full_queue_shows_its_progress_and_the_nacked_overflow(shared_lab, page, unique):
    queue = unique("full")
    arguments = {"x-max-length": 100, "x-overflow": "reject-publish"}
    assert shared_lab.post("/api/queues", {"name": queue, "arguments": arguments}).status_code == 201
    try:
        panel = open_traffic(page, shared_lab)
        form = panel.locator("#publish-form")
        form.get_by_label("Routing key", exact=True).fill(queue)
        form.get_by_label("Body", exact=True).fill("load")
        form.get_by_label("Count", exact=True).fill("2000")
        form.get_by_role("button", name="Publish").click()
        result = panel.locator("#publish-result", has_text="Burst of 2000")
        result.wait_for(timeout=20000)
        text = result.inner_text()
        assert "routed 100" in text
        assert "nacked 1900" in text
        assert "dropped 0" in text  # refused copies are not "dropped" (that is acked but unroutable)
        assert result.locator(".bad", has_text="nacked 1900").count() == 1
        assert "2000 / 2000 done in" in panel.locator("#burst-text").inner_text()
        assert panel.locator("#burst-progress").get_attribute("max") == "2000"
        panel.locator("#feed-rows tr[data-kind='published']", has_text="published · nacked").first.wait_for()
        assert "refused 1900" in panel.locator("#feed-stats").inner_text()
        assert "unroutable 0" in panel.locator("#feed-stats").inner_text()
        assert page.js_errors == []
    finally:
        shared_lab.delete(f"/api/queues/{queue}")


def test_the_feed_says_why_prediction_and_broker_differ_and_names_the_labs_tap(shared_lab, page, unique, amqp):
    exchange, queue = unique("blind"), unique("blind-q")
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "fanout"}).status_code == 201
    amqp.channel.queue_declare(queue)
    amqp.queues.append(queue)
    amqp.channel.queue_bind(queue, exchange)  # another application's binding: no management API to list it
    tap = None
    try:
        panel = open_traffic(page, shared_lab)
        form = panel.locator("#publish-form")
        form.get_by_label("Exchange", exact=True).fill(exchange)
        form.get_by_label("Body", exact=True).fill("seen by nobody the lab knows")
        form.get_by_role("button", name="Publish").click()
        # Without the management API the lab cannot see that binding: it says so instead of "dropped".
        panel.locator("#publish-result", has_text="predicted: unknown").wait_for(timeout=10000)
        assert "its bindings are unknown without the management API" in panel.locator("#publish-result").inner_text()
        message_id = panel.locator("#publish-result code").inner_text()
        verdict = panel.locator("#feed-rows tr[data-kind='published']", has_text=message_id).locator(".verdict")
        verdict.wait_for(timeout=10000)
        assert verdict.inner_text().startswith("?")
        assert "prediction wrong" not in verdict.inner_text() and "bad" not in verdict.get_attribute("class")
        assert "without the management API" in verdict.get_attribute("title")

        amqp.channel.queue_unbind(queue, exchange)
        tap = shared_lab.post("/api/taps", {"exchange": exchange, "binding_key": ""}).json()
        form.get_by_role("button", name="Publish").click()
        panel.locator("#publish-result", has_text="without the lab's tap").wait_for(timeout=10000)
        tapped_id = panel.locator("#publish-result code").inner_text()
        verdict = panel.locator("#feed-rows tr[data-kind='published']", has_text=tapped_id).locator(".verdict")
        verdict.wait_for(timeout=10000)
        assert "without the lab's tap this message would be unroutable" in verdict.get_attribute("title")
        assert "bad" not in verdict.get_attribute("class"), "prediction and broker agree"
        assert page.js_errors == []
    finally:
        if tap:
            shared_lab.delete(f"/api/taps/{tap['id']}")
        shared_lab.delete(f"/api/exchanges/{exchange}")
