"""The routing explainer's near misses in a real browser, on the real broker."""

from __future__ import annotations

import pytest

from tests.e2e.test_topology_page import cleanup, open_panel  # noqa: F401 (cleanup is a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_the_explainer_shows_near_misses_under_the_misses_as_text(shared_lab, page, unique, cleanup):  # noqa: F811
    exchange, queue = unique("animals"), unique("orange")
    cleanup["exchanges"].append(exchange)
    cleanup["queues"].append(queue)
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "topic"}).status_code == 201
    assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
    for key in ("*.orange.*", "<b>x</b>.orange"):
        body = {"source": exchange, "destination": queue, "routing_key": key}
        assert shared_lab.post("/api/bindings", body).status_code == 201
    open_panel(page, shared_lab)
    page.locator(f"#route-exchange option[value='{exchange}']").wait_for(state="attached")
    page.select_option("#route-exchange", exchange)
    page.fill("#route-key", "quick.orange")
    result = page.locator("#route-result")
    result.locator(".route-verdict.unknown").wait_for()  # the shared broker has no management API
    page.wait_for_function(
        "() => [...document.querySelectorAll('#route-result .near-item')].some(n => n.textContent.includes("
        "'Would match with key quick.orange.x'))"
    )
    near = result.locator(".near-item")
    texts = near.all_text_contents()
    star = next(t for t in texts if "*.orange.*" in t)
    assert "one word short: `*` needs a third word" in star
    assert "Would match with key quick.orange.x" in star
    assert any("<b>x</b>.orange" in t for t in texts)  # shown as text, never as markup
    assert result.locator("b").count() == 0
    # The near misses come after the misses.
    headings = result.locator("h3").all_text_contents()
    assert headings.index("Near misses (2)") > next(i for i, h in enumerate(headings) if h.startswith("Not matching"))
    assert page.js_errors == []
