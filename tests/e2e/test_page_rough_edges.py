"""The rough edges of the page a newcomer hits (issue 17, items 11-20), each checked in a real chromium."""

from __future__ import annotations

from pathlib import Path
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
        page.wait_for_function("() => document.querySelector('#trace-state').textContent !== 'checking…'")


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
        page.wait_for_function("() => document.querySelectorAll('#route-exchange option').length > 0")
        page.wait_for_timeout(600)  # past the explainer's debounce
        result = page.locator("#route-result")
        assert result.get_attribute("data-state") == "idle"
        assert page.locator("#route-result .route-verdict").count() == 0
        assert "type a routing key" in result.inner_text()
        page.select_option("#route-exchange", exchange)
        page.fill("#route-key", "nothing_bound")
        page.locator("#route-result[data-state='unknown']").wait_for(timeout=5000)  # no management API
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
    page.wait_for_function("() => !['', 'Adding…'].includes(document.querySelector('#tap-form-status').textContent)")
    assert "404" in status.inner_text() or "no exchange" in status.inner_text().lower()
    assert status.evaluate("node => getComputedStyle(node).color") == BAD


# ------------------------------------------------------------------ 13, 14, 15: traffic
@pytest.fixture
def queue(shared_lab, unique):
    """A queue declared through the lab (so predictions know it), with its consumers stopped afterwards."""
    name = unique("edge-q")
    assert shared_lab.post("/api/queues", {"name": name}).status_code == 201
    yield name
    for consumer in shared_lab.get("/api/consumers").json():
        if consumer["queue"] == name:
            shared_lab.delete(f"/api/consumers/{consumer['id']}")
    shared_lab.delete(f"/api/queues/{quote(name, safe='')}")


def start_consumer(page, queue: str, ack: str = "manual", on_message: str = "ack") -> None:
    form = page.locator("#consumer-form")
    form.get_by_label("Queue", exact=True).fill(queue)
    form.locator("select[name=ack]").select_option(ack)
    form.locator("select[name=on_message]").select_option(on_message)
    form.get_by_role("button", name="Start").click()


def publish_from_page(page, exchange: str, routing_key: str, body: str) -> None:
    form = page.locator("#publish-form")
    form.get_by_label("Exchange", exact=True).fill(exchange)
    form.get_by_label("Routing key", exact=True).fill(routing_key)
    form.get_by_label("Body", exact=True).fill(body)
    form.get_by_role("button", name="Publish").click()


def test_a_crash_under_auto_ack_says_the_message_is_lost(shared_lab, page, queue):
    open_panel(page, shared_lab, "traffic")
    start_consumer(page, queue, ack="auto", on_message="crash")
    card = page.locator("#consumer-list li", has=page.locator(f".consumer-queue:text-is('{queue}')"))
    card.locator(".state-badge", has_text="consuming").wait_for(timeout=10000)
    answer = shared_lab.post("/api/publish", {"exchange": "", "routing_key": queue, "body": "doomed"}).json()
    card.locator(".state-badge", has_text="crashed").wait_for(timeout=10000)
    error = card.locator(".consumer-error").inner_text()
    assert "auto ack: the broker already forgot this message; it is lost" in error
    assert "without acking" not in error
    delivery = page.locator("#feed-rows tr[data-kind='delivery']", has_text=answer["id"])
    delivery.locator(".settle-lost", has_text="lost").wait_for(timeout=5000)
    depth = next(q for q in shared_lab.get("/api/topology").json()["queues"] if q["name"] == queue)["messages"]
    assert depth == 0, "the message is gone from the queue too"


def test_a_manual_ack_crash_says_the_message_is_requeued(shared_lab, page, queue):
    open_panel(page, shared_lab, "traffic")
    start_consumer(page, queue, ack="manual", on_message="crash")
    card = page.locator("#consumer-list li", has=page.locator(f".consumer-queue:text-is('{queue}')"))
    card.locator(".state-badge", has_text="consuming").wait_for(timeout=10000)
    shared_lab.post("/api/publish", {"exchange": "", "routing_key": queue, "body": "kept"})
    card.locator(".state-badge", has_text="crashed").wait_for(timeout=10000)
    assert "requeues" in card.locator(".consumer-error").inner_text()
    assert "lost" not in card.locator(".consumer-error").inner_text()


def test_a_publish_the_broker_refuses_shows_in_the_feed(shared_lab, page, unique):
    missing = unique("missing-x")
    open_panel(page, shared_lab, "traffic")
    publish_from_page(page, missing, "some.key", "nobody gets this")
    page.locator("#publish-result.error-text").wait_for(timeout=10000)
    row = page.locator("#feed-rows tr[data-kind='published']", has_text=missing)
    row.wait_for(timeout=5000)
    assert "refused" in row.locator(".badge").inner_text()
    assert "404" in row.locator(".badge").inner_text()
    assert "no exchange" in row.inner_text()
    assert "tone-unroutable" in row.get_attribute("class")
    assert "refused 1" in page.locator("#feed-stats").inner_text()
    page.select_option("#feed-kind", "returned")
    assert row.is_visible()
    row.click()
    assert "refused" in page.locator("#message-detail").inner_text().lower()
    assert page.js_errors == []


def test_a_message_nobody_consumes_says_it_is_queued(shared_lab, page, queue):
    open_panel(page, shared_lab, "traffic")
    publish_from_page(page, "", queue, "waiting")
    page.locator("#publish-result", has_text="Confirmed").wait_for(timeout=10000)
    message_id = page.locator("#publish-result code").inner_text()
    verdict = page.locator("#feed-rows tr[data-kind='published']", has_text=message_id).locator(".verdict")
    verdict.wait_for(timeout=5000)
    page.wait_for_function(
        "(v) => v.textContent.includes('no consumer yet')", arg=verdict.element_handle(), timeout=5000
    )
    assert f"queued in {queue}, no consumer yet" in verdict.inner_text()
    assert "(pending)" not in verdict.inner_text()
    start_consumer(page, queue)
    page.locator("#feed-rows tr[data-kind='delivery']", has_text=message_id).wait_for(timeout=10000)
    page.wait_for_function("(v) => v.classList.contains('good')", arg=verdict.element_handle(), timeout=5000)
    assert "no consumer" not in verdict.inner_text()


# ------------------------------------------------------------------ 16: purge and delete ask first
def queue_depth(lab, name: str) -> int | None:
    for q in lab.get("/api/topology").json()["queues"]:
        if q["name"] == name:
            return q["messages"]
    return None


def test_purge_and_delete_ask_first_with_the_queue_depth(shared_lab, page, queue):
    native = []
    page.on("dialog", lambda dialog: (native.append(dialog.message), dialog.dismiss()))
    for _ in range(3):
        shared_lab.post("/api/publish", {"exchange": "", "routing_key": queue, "body": "keep me"})
    open_panel(page, shared_lab, "topology")
    row = page.locator(f"#queue-rows tr[data-name='{queue}']")
    row.locator("td.n", has_text="3").first.wait_for(timeout=10000)

    row.get_by_role("button", name=f"Purge queue {queue}").click()
    dialog = page.get_by_role("alertdialog", name="Purge queue")
    dialog.wait_for()
    assert "3 ready messages" in dialog.inner_text()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"  # the safe choice has the focus
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert queue_depth(shared_lab, queue) == 3, "Escape purged nothing"

    row.get_by_role("button", name=f"Purge queue {queue}").click()
    dialog.wait_for()
    page.keyboard.press("Tab")  # to the Purge button, all by keyboard
    assert page.evaluate("document.activeElement.textContent") == "Purge"
    page.keyboard.press("Enter")
    dialog.wait_for(state="detached")
    page.wait_for_function(
        f"() => document.querySelector(\"#queue-rows tr[data-name='{queue}'] td.n\").textContent === '0'"
    )
    assert queue_depth(shared_lab, queue) == 0

    row.get_by_role("button", name=f"Delete queue {queue}").click()
    dialog = page.get_by_role("alertdialog", name="Delete queue")
    dialog.wait_for()
    assert queue in dialog.inner_text() and "empty" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert queue_depth(shared_lab, queue) == 0, "Cancel deleted nothing"
    row.get_by_role("button", name=f"Delete queue {queue}").click()
    dialog.get_by_role("button", name="Delete queue").click()
    row.wait_for(state="detached", timeout=10000)
    assert queue_depth(shared_lab, queue) is None
    assert native == [], "no window.confirm"
    assert page.js_errors == []


# ------------------------------------------------------------------ 17: the default exchange's implicit bindings
def test_a_selected_queue_shows_its_implicit_default_exchange_binding(shared_lab, page, queue):
    open_panel(page, shared_lab, "topology")
    row = page.locator(f"#queue-rows tr[data-name='{queue}']")
    row.wait_for(timeout=10000)
    implicit = page.locator(f"#binding-rows tr[data-implicit='true'][data-destination='{queue}']")
    assert implicit.count() == 0
    row.locator("td.name").click()
    implicit.wait_for(timeout=5000)
    assert "(default exchange)" in implicit.inner_text()
    assert implicit.locator(".tag.implicit").inner_text() == "implicit"
    assert implicit.locator("button").count() == 0, "an implicit binding cannot be unbound"
    assert queue in page.locator("#binding-filter").inner_text()
    page.locator("#binding-filter-clear").click()
    implicit.wait_for(state="detached")
    row.focus()
    page.keyboard.press("Enter")  # selection by keyboard too
    implicit.wait_for(timeout=5000)


# ------------------------------------------------------------------ 19: what newer brokers refuse
def test_the_queue_form_warns_of_transient_queues_with_the_brokers_version(shared_lab, page):
    version = shared_lab.get("/api/health").json()["broker"]["server_version"]
    open_panel(page, shared_lab, "topology")
    form = page.locator("#queue-form")
    note = page.locator("#queue-compat")
    page.wait_for_function(
        "(v) => document.querySelector('#queue-compat').textContent.includes(v)", arg=version, timeout=5000
    )
    assert note.is_visible()  # the form starts transient (durable unticked)
    text = note.inner_text()
    assert f"works on this {version} broker; refused by RabbitMQ 4.3 and later unless" in text
    assert "transient_nonexcl_queues" in text
    form.get_by_label("durable").check()
    assert note.is_hidden()
    form.get_by_label("durable").uncheck()
    assert note.is_visible()
    form.locator("select[name=queue_type]").select_option("quorum")
    assert note.is_hidden()
    newer = page.evaluate(
        """async () => (await import('/static/js/topology.js')).queueCompatNote(
             {queue_type: {value: ''}, durable: {checked: false}}, '4.3.1')"""
    )
    assert "this RabbitMQ 4.3.1 refuses it unless" in newer
    page.screenshot(path="/tmp/rabbitlens-queue-compat.png")


# ------------------------------------------------------------------ 20: the RPC bound vs a Python client
def test_the_rpc_panel_says_where_a_python_client_stops_reading(shared_lab, page):
    from rabbit.fib import DEFAULT_MAX_N, fib, to_decimal

    # What the note claims, checked against this Python: int() refuses fib(20578), reads fib(20577).
    limit = 20578
    int(to_decimal(fib(limit - 1)))
    with pytest.raises(ValueError, match="4300"):
        int(to_decimal(fib(limit)))
    assert limit <= DEFAULT_MAX_N
    open_panel(page, shared_lab, "rpc")
    note = page.locator("#rpc-max-n-note")
    assert note.is_visible()
    text = " ".join(note.inner_text().split())
    assert f"n ≤ {DEFAULT_MAX_N}" in text
    assert f"fib({limit}) and up" in text and "4300 digits" in text
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "`fib(20578)` and up" in readme and "4300" in readme


# ------------------------------------------------------------------ 18: the icon
def test_a_page_load_asks_for_nothing_that_is_missing(shared_lab, page):
    missing = []
    page.on("response", lambda response: response.status == 404 and missing.append(response.url))
    open_panel(page, shared_lab, "overview")
    page.wait_for_timeout(1000)  # the icon is fetched after the load
    icon = page.evaluate("document.querySelector('link[rel=icon]')?.href")
    assert icon and page.request.get(icon).ok
    assert missing == []
