"""The RPC panel in a real browser: a killed server stays listed greyed until cleared; a refused call has its row."""

import pytest
from playwright.sync_api import expect

from tests.e2e.test_rpc_page import open_rpc, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_a_killed_server_stays_greyed_and_a_refused_call_shows_its_reason(shared_lab, page, amqp, unique):
    queue = unique("rpc-ended")
    amqp.queues.append(queue)
    panel = open_rpc(page, shared_lab)
    try:
        start_server(panel, queue)
        row = panel.locator("#rpc-servers tr[data-state=serving]")
        row.wait_for()
        server_id = row.locator("td").first.inner_text()
        panel.get_by_label("n", exact=True).fill("10")
        panel.get_by_label("n", exact=True).press("Enter")
        expect(panel.locator('#rpc-call-result [data-field="result"]')).to_have_text("55")
        mine = panel.locator(f"#rpc-servers tr[data-id={server_id}]")
        expect(mine.locator("td.handled")).to_have_text("1")

        mine.get_by_role("button", name="Kill").click()
        expect(mine).to_have_attribute("data-state", "killed")
        expect(mine).to_have_class("ended")
        expect(mine.locator("td.handled")).to_have_text("1")  # its final count
        assert mine.get_by_role("button").count() == 0  # nothing left to stop or kill
        assert mine.evaluate("tr => Number(getComputedStyle(tr.cells[0]).opacity)") < 1  # greyed

        # No server consumes the queue now: the call is refused before sending, and the round trips say why.
        panel.get_by_role("button", name="Call", exact=True).click()
        refused = panel.locator("#rpc-timeline li.rt-refused").first
        refused.wait_for()
        assert "0 consumers" in refused.inner_text() and "fib(10)" in refused.inner_text()

        panel.get_by_role("button", name="Clear stopped").click()
        expect(mine).to_have_count(0)
        assert server_id not in [s["id"] for s in shared_lab.get("/api/rpc/servers").json()["servers"]]
        assert page.js_errors == []
    finally:
        for server in shared_lab.get("/api/rpc/servers").json()["servers"]:
            if server["queue"] == queue:
                shared_lab.delete(f"/api/rpc/servers/{server['id']}?kill=1")
        shared_lab.delete("/api/rpc/servers?stopped=1")
