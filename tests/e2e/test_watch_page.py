"""The watch page in a real browser: a tap shows a message as text; the trace switch and its feed."""

from __future__ import annotations

import pika
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

XSS = "<img src=x onerror=alert(1)>"


def open_watch(page, base_url: str):
    page.goto(base_url + "/#watch")
    section = page.locator("section[data-panel='watch']")
    section.wait_for(state="visible", timeout=10000)
    # The module has started (its handlers are on the form) once it wrote the feed's stats line.
    page.wait_for_function("() => document.querySelector('#tap-stats').textContent !== ''")
    return section


def test_a_tap_shows_messages_as_text_and_can_be_removed(shared_lab, page, amqp, unique):
    exchange = unique("e2e-tap")
    amqp.channel.exchange_declare(exchange, "topic")
    amqp.exchanges.append(exchange)
    section = open_watch(page, shared_lab.base_url)
    assert "No taps yet" in section.locator("#tap-list").evaluate("n => getComputedStyle(n, '::before').content")

    section.get_by_label("Exchange", exact=True).fill(exchange)
    section.get_by_label("Binding key").fill("orders.#")
    section.get_by_label("Binding key").press("Enter")  # Enter submits
    item = section.locator(".tap-item", has_text=exchange)
    page.wait_for_function("() => document.querySelector('#tap-form-status').textContent.startsWith('Tapping')")
    item.wait_for(timeout=10000)

    amqp.channel.basic_publish(exchange, "orders.new", XSS.encode(), pika.BasicProperties(headers={"x": "1"}))
    amqp.channel.basic_publish(exchange, "users.new", b"filtered out by the binding key")
    row = section.locator("#tap-feed .feed-row", has_text="orders.new")
    row.wait_for(timeout=10000)
    assert XSS in row.locator(".row-body").inner_text()
    assert section.locator("#tap-feed img").count() == 0, "the body is text, never markup"
    page.wait_for_function("() => document.querySelector('#tap-stats').textContent.startsWith('1 tapped')")

    # The row opens the same message detail view as the traffic feed: title, headers, body (as text).
    row.locator(".row-details summary").click()
    detail = row.locator(".row-details")
    assert detail.locator(".detail-kind").inner_text() == "Tapped message"
    assert '"x": "1"' in detail.locator(".detail-section", has_text="Headers").inner_text()
    assert detail.locator(".body-pre").last.inner_text() == XSS
    assert section.locator("#tap-feed img").count() == 0

    # The feed filter hides rows that do not match and shows its empty state.
    section.locator("#tap-filter").fill("no-such-thing")
    assert section.locator("#tap-feed .feed-row").count() == 0
    section.locator("#tap-filter").fill("orders")
    assert section.locator("#tap-feed .feed-row").count() == 1

    item.get_by_role("button", name="Remove").click()
    item.wait_for(state="detached", timeout=10000)
    assert page.js_errors == []


def test_trace_is_unavailable_without_the_management_api(shared_lab, page):
    section = open_watch(page, shared_lab.base_url)
    reason = section.locator("#trace-reason")
    reason.wait_for(state="visible", timeout=10000)
    assert "does not answer" in reason.inner_text()
    assert section.locator("#trace-state").inner_text() == "Unavailable"
    assert section.locator("#trace-switch").get_attribute("aria-checked") == "false"
    # The switch cannot work here: it is disabled (it used to flip to "Off") and the page says how to enable it.
    assert section.locator("#trace-switch").is_disabled()
    assert "rabbitmq-plugins enable rabbitmq_management" in section.locator("#trace-enable").inner_text()
    assert "trace needs the management API at" in reason.inner_text()
    assert section.locator("#trace-switch").get_attribute("aria-checked") == "false"


def test_the_trace_switch_streams_publishes_and_deliveries(managed_lab, managed_node, page, unique):
    section = open_watch(page, managed_lab.base_url)
    switch = section.get_by_role("switch")
    page.wait_for_function("() => document.querySelector('#trace-state').textContent.startsWith('Off')")
    switch.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#trace-switch').getAttribute('aria-checked') === 'true'")
    try:
        queue = unique("e2e-trace-q")
        connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
        channel = connection.channel()
        channel.queue_declare(queue, auto_delete=True)
        channel.basic_publish("", queue, b"seen by the firehose")
        channel.basic_get(queue, auto_ack=True)
        publish = section.locator("#trace-feed .trace-publish", has_text=queue)
        publish.wait_for(timeout=10000)
        assert "seen by the firehose" in publish.inner_text()
        section.locator("#trace-feed .trace-deliver", has_text=queue).wait_for(timeout=10000)
        section.locator("#trace-kind").select_option("publish")
        assert section.locator("#trace-feed .trace-deliver").count() == 0
        section.locator("#trace-kind").select_option("")
        channel.queue_delete(queue)
        connection.close()
        page.screenshot(path="/tmp/watch-trace.png", full_page=True)
    finally:
        switch.click()
        page.wait_for_function("() => document.querySelector('#trace-switch').getAttribute('aria-checked') === 'false'")
    assert page.js_errors == []
