"""A body of deeply nested JSON (issue 15 item 2) through the page: published once, delivered, its consumer goes
on, and the detail says why the body shows as text."""

from __future__ import annotations

import pytest

from tests.e2e.test_traffic_page import (
    delete_queue_and_consumers,
    first_delivery,
    open_traffic,
    publish,
    start_consumer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

NESTED = "[" * 2000 + "]" * 2000


def test_a_deeply_nested_body_is_delivered_and_the_detail_says_why_it_is_text(shared_lab, page, unique):
    queue = unique("nested")
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    try:
        panel = open_traffic(page, shared_lab)
        start_consumer(panel, queue)
        publish(panel, queue, NESTED)
        row = first_delivery(panel)
        row.focus()
        page.keyboard.press("Enter")
        detail = panel.locator("#message-detail")
        detail.wait_for(state="visible")
        assert "JSON nested deeper than 64 levels: shown as text" in detail.locator(".body-bar").inner_text()
        assert detail.locator(".body-pre").last.inner_text() == NESTED
        badge = panel.locator(f"#consumer-list li:has(.consumer-queue:text-is('{queue}')) .state-badge")
        assert badge.inner_text().strip().lower() == "consuming"
        assert "error" not in panel.locator("#publish-result").get_attribute("class")
        assert page.js_errors == []
    finally:
        delete_queue_and_consumers(shared_lab, queue)
