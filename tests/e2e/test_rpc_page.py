"""The RPC panel in a real browser: start a server, call fib(30), see 832040 and its latency."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def open_rpc(page, lab):
    page.goto(lab.base_url + "/#rpc")
    panel = page.locator("section[data-panel=rpc][data-ready=true]")
    panel.wait_for(state="visible")
    return panel


def start_server(panel, queue: str) -> None:
    panel.get_by_label("Queue", exact=True).fill(queue)
    panel.get_by_role("button", name="Start server").click()


def test_start_a_server_and_call_fib_30(shared_lab, page, amqp, unique):
    queue = unique("rpc-page")
    amqp.queues.append(queue)
    panel = open_rpc(page, shared_lab)
    assert page.get_by_role("tab", name="RPC").get_attribute("aria-selected") == "true"
    try:
        start_server(panel, queue)
        server_row = panel.locator("#rpc-servers tr")
        server_row.first.wait_for()
        page.wait_for_function(
            "() => document.querySelector('#rpc-servers tr td:nth-child(3)')?.textContent === 'serving'"
        )

        panel.get_by_label("n", exact=True).fill("30")
        assert panel.locator("#rpc-call-result").is_hidden()  # nothing shown before the first reply
        panel.get_by_label("n", exact=True).press("Enter")  # Enter submits
        result = panel.locator('#rpc-call-result [data-field="result"]')
        expect(result).to_have_text("832040")
        latency = panel.locator('#rpc-call-result [data-field="latency"]').inner_text()
        assert re.fullmatch(r"\d+(\.\d+)? (ms|s)", latency), latency
        server_id = server_row.first.locator("td").first.inner_text()
        assert panel.locator('#rpc-call-result [data-field="server"]').inner_text() == server_id

        row = panel.locator("#rpc-timeline li.rt-ok").first
        row.wait_for()
        assert "fib(30) → 832040" in row.inner_text()
        page.wait_for_function(
            "() => [...document.querySelectorAll('#rpc-servers td.handled')].some(td => td.textContent === '1')"
        )

        # an error is shown from the API's message, and coloured in the timeline
        panel.get_by_label("n", exact=True).fill("100001")
        panel.get_by_role("button", name="Call", exact=True).click()
        expect(panel.locator("#rpc-call-error")).to_contain_text("n must be <= 100000 (got 100001)")
        assert panel.locator("#rpc-call-result").is_hidden()
        panel.locator("#rpc-timeline li.rt-error").first.wait_for()

        panel.get_by_label("Calls", exact=True).fill("300")
        panel.get_by_role("button", name="Run burst").click()
        expect(panel.locator("#rpc-burst-summary")).to_contain_text("p99")
        expect(panel.locator("#rpc-burst-summary")).to_contain_text("300")
        page.screenshot(path="/tmp/rpc.png", full_page=True)
        assert page.js_errors == []
    finally:
        for server in shared_lab.get("/api/rpc/servers").json()["servers"]:
            if server["queue"] == queue:
                shared_lab.delete(f"/api/rpc/servers/{server['id']}?kill=1")
        shared_lab.delete("/api/rpc/servers?stopped=1")  # killed servers stay listed until cleared
