"""Everything from the broker is text: markup in names, keys, headers and bodies never runs in the page."""

import uuid

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_script_bearing_names_and_bodies_render_as_text_in_every_panel(shared_lab, amqp, page):
    token = uuid.uuid4().hex[:6]
    exchange = f'rl-test-<img src=x onerror="window.__xss=1">-{token}'
    queue = f"rl-test-<script>window.__xss=2</script>-{token}"
    key = '<svg onload="window.__xss=3">'
    body = '<img src=x onerror="window.__xss=4"><script>window.__xss=5</script>'
    amqp.exchanges.append(exchange)
    amqp.queues.append(queue)
    base = shared_lab.base_url
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    assert requests.post(base + "/api/exchanges", json={"name": exchange, "type": "topic"}, timeout=10).ok
    assert requests.post(base + "/api/queues", json={"name": queue}, timeout=10).ok
    binding = {"source": exchange, "destination": queue, "destination_type": "queue", "routing_key": "#"}
    assert requests.post(base + "/api/bindings", json=binding, timeout=10).ok
    consumer = requests.post(base + "/api/consumers", json={"queue": queue}, timeout=10).json()["id"]
    tap = requests.post(base + "/api/taps", json={"exchange": exchange, "binding_key": "#"}, timeout=10).json()["id"]
    try:
        page.goto(base + "/#traffic")
        page.locator("#broker-status[data-state='connected']").wait_for(timeout=10000)
        page.locator("section[data-panel='traffic'][data-ready='true']").wait_for(timeout=10000)
        published = requests.post(
            base + "/api/publish",
            json={
                "exchange": exchange,
                "routing_key": key,
                "body": body,
                "properties": {
                    "content_type": "text/html",
                    "headers": {"x-note": '<b onmouseover="window.__xss=6">hi</b>'},
                },
            },
            timeout=10,
        )
        assert published.ok, published.text
        traffic = page.locator("section[data-panel='traffic']")
        traffic.get_by_text(key).first.wait_for(timeout=10000)

        for panel in ("topology", "watch", "traffic", "overview"):
            page.goto(f"{base}/#{panel}")
            page.locator(f"section[data-panel='{panel}']").wait_for(state="visible", timeout=10000)
            page.wait_for_timeout(1500)
            assert page.evaluate("window.__xss") is None, f"markup ran in the {panel} panel"
            assert page.locator("section.panel img[src='x']").count() == 0
            assert page.locator("section.panel svg[onload]").count() == 0
            assert page.locator("section.panel script").count() == 0
        page.goto(base + "/#topology")
        page.locator("section[data-panel='topology']").get_by_text(exchange).first.wait_for(timeout=10000)
        assert dialogs == []
        assert page.js_errors == []
    finally:
        requests.delete(f"{base}/api/taps/{tap}", timeout=10)
        requests.delete(f"{base}/api/consumers/{consumer}", timeout=10)
