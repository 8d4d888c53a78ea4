"""The spies in the watch panel, in a real browser: a spy shows what its queue is routed, as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_watch_page import XSS, open_watch

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_a_spy_shows_its_queues_messages_and_can_be_removed(shared_lab, page, amqp, unique):
    exchange, queue = unique("e2e-spy-x"), unique("e2e-spy-q")
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "topic"}).status_code == 201
    amqp.exchanges.append(exchange)
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    amqp.queues.append(queue)
    assert shared_lab.post("/api/bindings", {"source": exchange, "destination": queue, "routing_key": "a.*"}).ok
    section = open_watch(page, shared_lab.base_url)
    card = section.locator("#spy-card")
    card.get_by_label("Queue").fill(queue)
    card.get_by_role("button", name="Spy on queue").click()
    page.wait_for_function("() => document.querySelector('#spy-form-status').textContent.startsWith('Spying')")
    item = card.locator(".tap-item", has_text=queue)
    item.wait_for(timeout=10000)
    assert "a.*" in item.locator(".spy-bindings").inner_text()
    assert "default exchange" in item.locator(".spy-note").inner_text()

    amqp.channel.basic_publish(exchange, "a.b", XSS.encode())
    row = section.locator("#spy-feed .feed-row", has_text="a.b")
    row.wait_for(timeout=10000)
    assert XSS in row.locator(".row-body").inner_text()
    assert section.locator("#spy-feed img").count() == 0, "the body is text, never markup"
    page.wait_for_function("() => document.querySelector('#spy-stats').textContent.startsWith('1 spied')")
    expect(item).to_contain_text("1 messages")  # the server's exact count, read again after messages
    _, _, body = amqp.channel.basic_get(queue, auto_ack=True)
    assert body == XSS.encode(), "the queue still has its copy"

    item.get_by_role("button", name="Remove").click()
    item.wait_for(state="detached", timeout=10000)
    assert shared_lab.get("/api/spies").json() == []
    assert page.js_errors == []
