"""The RPC panel shows a float reply as flagged, not as the result, shows each request's expiration, and cancels a
burst (issue 17 items 6-7, issue 15 item 8), in a real browser against a real lab."""

import pytest
from playwright.sync_api import expect

from tests.e2e.test_rpc_page import open_rpc
from tests.integration.test_rpc_bursts import ScriptedServer, node_tutorial

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def start_server(broker_url, amqp, queue, answer):
    amqp.fresh_channel().queue_declare(queue)
    amqp.queues.append(queue)
    server = ScriptedServer(broker_url, queue, answer)
    server.start()
    assert server.ready.wait(10)
    return server


def test_float_replies_are_flagged_and_bursts_cancelled(shared_lab, page, amqp, unique, broker_url):
    node = start_server(broker_url, amqp, unique("rpc-node"), node_tutorial)
    silent = start_server(broker_url, amqp, unique("rpc-silent"), lambda body: None)
    try:
        panel = open_rpc(page, shared_lab)
        panel.get_by_label("Queue", exact=True).fill(node.queue)
        panel.get_by_label("n", exact=True).fill("1000")
        panel.get_by_role("button", name="Call", exact=True).click()
        flag = panel.locator("#rpc-call-flag")
        expect(flag).to_contain_text("not an exact integer: the server used floating point")
        expect(flag).to_contain_text("4.346655768693743e+208")
        expect(panel.locator('#rpc-call-result [data-field="result"]')).to_have_text("— (no exact result)")
        expect(panel.locator('#rpc-call-result [data-field="expiration"]')).to_have_text("expires in 5000 ms")
        row = panel.locator("#rpc-timeline li.rt-error").first
        expect(row).to_contain_text("not an exact integer")

        panel.get_by_label("n", exact=True).fill("30")
        panel.get_by_role("button", name="Call", exact=True).click()
        expect(panel.locator('#rpc-call-result [data-field="result"]')).to_have_text("832040")
        assert panel.locator("#rpc-call-flag").is_hidden()

        # A burst against a server that never answers: the page cancels it.
        panel.get_by_label("Queue", exact=True).fill(silent.queue)
        panel.get_by_label("Timeout (s)", exact=True).fill("60")
        panel.get_by_label("Calls", exact=True).fill("1000")
        panel.get_by_role("button", name="Run burst").click()
        cancel = panel.get_by_role("button", name="Cancel")
        expect(cancel).to_be_visible()
        running = shared_lab.get("/api/rpc/bursts").json()["bursts"]
        assert [b for b in running if b["queue"] == silent.queue and b["cancel_on_disconnect"]]
        cancel.click()
        expect(panel.locator("#rpc-burst-summary")).to_contain_text("cancelled by DELETE")
        expect(cancel).to_be_hidden()
        assert page.js_errors == []
    finally:
        node.stop()
        silent.stop()
