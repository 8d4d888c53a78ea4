"""The rough edges of the page a newcomer hits (issue 17, items 11-20), each checked in a real chromium."""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

BAD = "rgb(248, 81, 73)"  # --bad in app.css


def open_panel(page, lab, name: str):
    page.goto(f"{lab.base_url}/#{name}")
    page.locator("#broker-status[data-state='connected']").wait_for(timeout=10000)
    page.locator(f"section[data-panel='{name}']").wait_for(state="visible")
    if name == "traffic":
        page.locator("section[data-panel='traffic'][data-ready='true']").wait_for()
    if name == "topology":
        page.locator("#topo-source[data-source='lab']").wait_for(timeout=10000)
    if name == "watch":
        page.wait_for_function("document.querySelector('#trace-state').textContent !== 'checking…'")


# ------------------------------------------------------------------ 11: trace without the management API
def test_trace_switch_is_disabled_without_the_management_api_and_says_how_to_enable_it(shared_lab, page):
    open_panel(page, shared_lab, "watch")
    switch = page.locator("#trace-switch")
    page.locator("#trace-state", has_text="Unavailable").wait_for(timeout=10000)
    assert switch.is_disabled()
    hint = page.locator("#trace-enable")
    assert hint.is_visible()
    assert "rabbitmq-plugins enable rabbitmq_management" in hint.inner_text()
    switch.click(force=True)  # a click on the disabled switch changes nothing
    page.wait_for_timeout(300)
    assert switch.get_attribute("aria-checked") == "false"
    assert page.locator("#trace-state").inner_text() == "Unavailable"
    assert page.js_errors == []


# ------------------------------------------------------------------ 12: underscores in inputs
PANELS = ("topology", "traffic", "watch", "rpc")


def test_underscores_are_drawn_in_every_text_input_of_every_panel(shared_lab, page):
    """`direct_logs` and `direct logs` must not look the same: an input that clips the underscore's descender
    draws both alike. Compares the pixels of each visible text input with both values."""
    page.set_viewport_size({"width": 1440, "height": 900})
    open_panel(page, shared_lab, "topology")
    checked, clipped = [], []
    for panel in PANELS:
        page.evaluate(f"location.hash = '#{panel}'")
        page.locator(f"section[data-panel='{panel}']").wait_for(state="visible")
        inputs = page.locator(
            f"#panel-{panel} input:visible:not([type=checkbox]):not([type=number]), #panel-{panel} textarea:visible"
        )
        for index in range(inputs.count()):
            field = inputs.nth(index)
            name = field.evaluate("node => { node.removeAttribute('placeholder'); return node.id || node.name; }")
            shots = []
            for value in ("direct logs", "direct_logs"):
                field.fill(value)
                field.evaluate("node => node.blur()")
                shots.append(field.screenshot())
            checked.append(f"{panel}:{name}")
            if shots[0] == shots[1]:
                clipped.append(f"{panel}:{name}")
    assert len(checked) >= 20, checked
    assert clipped == [], f"underscores invisible in {clipped}"
    page.evaluate("location.hash = '#topology'")
    page.fill("#exchange-name", "direct_logs")
    page.fill("#binding-key", "user_signup.#")
    page.locator("#exchange-form").screenshot(path="/tmp/rabbitlens-underscore-exchange-form.png")
    page.locator("#binding-form").screenshot(path="/tmp/rabbitlens-underscore-binding-form.png")


# ------------------------------------------------------------------ 17: overview, explainer, feed filter, taps
def test_the_connection_history_lists_each_change_once(shared_lab, page):
    open_panel(page, shared_lab, "overview")
    page.locator("#status-history li").first.wait_for(timeout=10000)
    page.wait_for_timeout(1500)  # the health poll and the live greeting have both answered
    lines = page.locator("#status-history li").all_inner_texts()
    assert len(lines) == len(set(lines)), lines


def test_the_explainer_judges_nothing_before_anything_is_typed(shared_lab, page, unique):
    exchange = unique("idle-x")
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "direct"}).status_code == 201
    try:
        open_panel(page, shared_lab, "topology")
        page.wait_for_function("document.querySelectorAll('#route-exchange option').length > 0")
        page.wait_for_timeout(600)  # past the explainer's debounce
        result = page.locator("#route-result")
        assert result.get_attribute("data-state") == "idle"
        assert page.locator("#route-result .route-verdict").count() == 0
        assert "type a routing key" in result.inner_text()
        page.select_option("#route-exchange", exchange)
        page.fill("#route-key", "nothing_bound")
        page.locator("#route-result[data-state='unroutable']").wait_for(timeout=5000)
    finally:
        shared_lab.delete(f"/api/exchanges/{quote(exchange, safe='')}")


def test_an_empty_prediction_differs_filter_says_why(shared_lab, page, unique):
    queue = unique("filter-q")
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    try:
        open_panel(page, shared_lab, "traffic")
        answer = shared_lab.post("/api/publish", {"exchange": "", "routing_key": queue, "body": "hi"}).json()
        page.locator("#feed-rows tr", has_text=answer["id"]).first.wait_for(timeout=10000)
        page.select_option("#feed-kind", "mismatch")
        note = page.locator("#feed-filter-empty")
        note.wait_for(state="visible", timeout=5000)
        assert "prediction differs" in note.inner_text()
        assert "went where the routing engine predicted" in note.inner_text()
        page.select_option("#feed-kind", "")
        assert note.is_hidden()
    finally:
        shared_lab.delete(f"/api/queues/{quote(queue, safe='')}")


def test_tap_errors_are_red(shared_lab, page, unique):
    open_panel(page, shared_lab, "watch")
    form = page.locator("#tap-form")
    form.get_by_label("Exchange", exact=True).fill(unique("no-such-exchange"))
    form.get_by_role("button", name="Add tap").click()
    status = page.locator("#tap-form-status")
    page.wait_for_function("!['', 'Adding…'].includes(document.querySelector('#tap-form-status').textContent)")
    assert "404" in status.inner_text() or "no exchange" in status.inner_text().lower()
    assert status.evaluate("node => getComputedStyle(node).color") == BAD
