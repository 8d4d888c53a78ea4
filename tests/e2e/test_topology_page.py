"""The topology panel and the routing explainer in a real browser, on the real broker."""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


@pytest.fixture
def cleanup(shared_lab):
    names = {"queues": [], "exchanges": []}
    yield names
    for queue in names["queues"]:
        shared_lab.delete(f"/api/queues/{quote(queue, safe='')}")
    for exchange in names["exchanges"]:
        shared_lab.delete(f"/api/exchanges/{quote(exchange, safe='')}")


def open_panel(page, lab):
    page.goto(lab.base_url + "/#topology")
    page.locator("#topo-source[data-source='lab']").wait_for(timeout=10000)


def submit(form):
    """Submit with the keyboard (Enter in the last text field), as a user would, and wait for the answer."""
    form.locator("input:not([type=checkbox])").last.press("Enter")
    form.page.wait_for_function("(form) => !form.hasAttribute('aria-busy')", arg=form.element_handle())


def declare_exchange(page, name: str, type: str):
    """Declare an exchange through the page's form and wait for its row (the form is returned for more)."""
    form = page.locator("#exchange-form")
    form.locator("#exchange-name").fill(name)
    form.locator("#exchange-type").select_option(type)
    submit(form)
    page.locator(f"#exchange-rows tr[data-name='{name}']").wait_for()
    return form


def test_declare_bind_and_explain_the_tutorial_topic_example(shared_lab, page, unique, cleanup):
    exchange, q_orange, q_lazy = unique("animals"), unique("orange"), unique("lazy")
    cleanup["exchanges"].append(exchange)
    cleanup["queues"] += [q_orange, q_lazy]
    open_panel(page, shared_lab)

    # Declare the exchange and the queues through the page's forms.
    declare_exchange(page, exchange, "topic")
    for queue in (q_orange, q_lazy):
        page.fill("#queue-name", queue)
        page.locator("#queue-name").press("Enter")
        page.locator(f"#queue-rows tr[data-name='{queue}']").wait_for()

    # Bind them with *.orange.* and lazy.#
    for queue, key in ((q_orange, "*.orange.*"), (q_lazy, "lazy.#")):
        page.fill("#binding-source", exchange)
        page.fill("#binding-destination", queue)
        page.fill("#binding-key", key)
        page.locator("#binding-key").press("Enter")
        page.locator(f"#binding-rows tr[data-destination='{queue}']").wait_for()
    assert page.locator("#binding-count").inner_text() == str(page.locator("#binding-rows tr:not(.empty-row)").count())

    # The explainer, live as one types.
    page.select_option("#route-exchange", exchange)
    page.fill("#route-key", "quick.orange.rabbit")
    result = page.locator("#route-result")
    result.locator(".route-verdict.routed").wait_for()
    page.wait_for_function("() => document.querySelectorAll('#route-result .route-item').length === 2")
    assert result.get_attribute("data-state") == "routed"
    assert result.locator(".route-queue").all_inner_texts() == [q_orange]
    match = result.locator(f".route-match[data-destination='{q_orange}']")
    assert match.get_attribute("data-pattern") == "*.orange.*"
    tokens = match.locator(".tok")
    assert tokens.count() == 3
    assert [tokens.nth(i).locator(".tok-pattern").inner_text() for i in range(3)] == ["*", "orange", "*"]
    assert [tokens.nth(i).locator(".tok-words").inner_text() for i in range(3)] == ["quick", "orange", "rabbit"]
    assert match.locator(".tok.ok").count() == 3
    miss = result.locator(f".route-miss[data-destination='{q_lazy}']")
    assert miss.locator(".tok.fail .tok-pattern").inner_text() == "lazy"
    assert miss.locator(".tok.fail .tok-words").inner_text() == "quick"
    assert "expected word 'lazy'" in miss.locator(".why").inner_text()
    assert result.locator(".route-match").count() == 1

    page.fill("#route-key", "lazy.pink")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#route-result .route-queue')].map(n => n.textContent)"
        f".join() === {q_lazy!r}"
    )
    lazy = result.locator(f".route-match[data-destination='{q_lazy}']")
    assert [lazy.locator(".tok-pattern").nth(i).inner_text() for i in range(2)] == ["lazy", "#"]
    assert lazy.locator(".tok").nth(1).locator(".tok-words").inner_text() == "pink"
    assert result.locator(f".route-miss[data-destination='{q_orange}']").count() == 1
    assert result.locator(f".route-match[data-destination='{q_orange}']").count() == 0

    page.fill("#route-key", "quick.brown.fox")  # no binding of the lab's takes it; no management API for others'
    result.locator(".route-verdict.unknown").wait_for()
    assert result.get_attribute("data-state") == "unknown"
    assert "Unknown" in result.locator(".route-verdict").text_content()
    assert "rabbitmq-plugins enable rabbitmq_management" in result.inner_text()

    page.fill("#route-key", "quick.orange.rabbit")
    result.locator(".route-verdict.routed").wait_for()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path="/tmp/topology.png", full_page=True)
    assert page.js_errors == []


def test_broker_errors_show_near_the_form_and_the_page_keeps_working(shared_lab, page, unique, cleanup):
    exchange = unique("typed")
    cleanup["exchanges"].append(exchange)
    open_panel(page, shared_lab)
    form = declare_exchange(page, exchange, "topic")

    form.locator("#exchange-name").fill(exchange)
    form.locator("#exchange-type").select_option("fanout")
    submit(form)
    error = form.locator(".form-error")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert text.startswith("406 PRECONDITION_FAILED: inequivalent arg 'type'"), text  # the code once, with its number
    assert (
        "The exchange exists with other flags or arguments: "
        "re-declare with the same flags, or delete the exchange first." in text
    )

    form.locator("#exchange-name").fill("amq.not-allowed")
    submit(form)
    page.wait_for_function(
        "() => document.querySelector('#exchange-form .form-error').textContent.includes('ACCESS_REFUSED')"
    )

    # The queue list shows a readable 404 when a queue vanished behind the page's back.
    queue = unique("gone")
    cleanup["queues"].append(queue)
    page.fill("#queue-name", queue)
    page.locator("#queue-name").press("Enter")
    row = page.locator(f"#queue-rows tr[data-name='{queue}']")
    row.wait_for()
    assert shared_lab.delete(f"/api/queues/{quote(queue, safe='')}").status_code == 204
    # The event after the delete removes the row: the live update works.
    row.wait_for(state="detached")

    # And a good declare right after the errors works.
    form.locator("#exchange-name").fill(unique("fine"))
    cleanup["exchanges"].append(unique("fine"))
    submit(form)
    page.locator(f"#exchange-rows tr[data-name='{unique('fine')}']").wait_for()
    assert form.locator(".form-error").is_hidden()
    assert page.js_errors == []


def test_the_explainer_says_refused_for_an_internal_exchange_and_names_the_labs_tap(
    shared_lab, page, unique, cleanup, amqp
):
    inner, tapped, hello = unique("inner"), unique("tapped"), unique("hello")
    for body in ({"name": inner, "type": "fanout", "internal": True}, {"name": tapped, "type": "topic"}):
        assert shared_lab.post("/api/exchanges", body).status_code == 201
        cleanup["exchanges"].append(body["name"])
    tap = shared_lab.post("/api/taps", {"exchange": tapped, "binding_key": "#"}).json()
    amqp.channel.queue_declare(hello)  # send.py's queue, declared by another application
    amqp.queues.append(hello)
    try:
        open_panel(page, shared_lab)
        result = page.locator("#route-result")
        page.locator(f"#route-exchange option[value='{inner}']").wait_for(state="attached")
        page.select_option("#route-exchange", inner)
        page.wait_for_function("() => document.querySelector('#route-result').dataset.state === 'refused'")
        assert "Refused: internal exchange" in result.locator(".route-verdict").text_content()

        page.select_option("#route-exchange", tapped)
        page.fill("#route-key", "audit.log")
        page.wait_for_function("() => document.querySelector('#route-result').dataset.state === 'routed'")
        assert result.locator(".route-queue").all_inner_texts() == [f"{tap['queue']} (lab's tap)"]
        assert "without the lab's tap this message would be unroutable" in result.locator(".route-notes").text_content()

        page.select_option("#route-exchange", "")
        page.fill("#route-key", hello)
        page.wait_for_function(
            f"() => [...document.querySelectorAll('#route-result .route-queue')].map(n => n.textContent).join() === "
            f"{hello!r}"
        )
        assert page.js_errors == []
    finally:
        shared_lab.delete(f"/api/taps/{tap['id']}")
