"""A tab that stops reading is dropped by the server and, when it comes back, shows why (issue 15 item 6).

The page's JavaScript is paused through the DevTools protocol: Chrome then stops taking websocket data from the
network (its flow control), so the server's send queue for this tab fills, as with a frozen or throttled tab.
"""

import pytest
from playwright.sync_api import expect

from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_a_paused_tab_is_dropped_and_told_why(lab_factory, broker_url, page, amqp, unique):
    lab = lab_factory(broker_url, RABBITLENS_CLIENT_MAX_BACKLOG_BYTES="2000000").wait_broker_connected()
    page.goto(lab.base_url + "/")
    page.locator("#socket-state", has_text="live").wait_for()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Debugger.enable")
    cdp.send("Debugger.pause")
    pad = "p" * 5_000
    try:
        for i in range(200):
            name = unique(f"tab-{i}")
            amqp.queues.append(name)
            assert lab.post("/api/queues", {"name": name, "arguments": {"x-pad": pad}}).status_code == 201
            if lab.get("/api/stats").json()["live"]["clients_dropped"]:
                break
        wait_until(lambda: lab.get("/api/stats").json()["live"]["clients_dropped"] == 1, message="the tab dropped")
    finally:
        cdp.send("Debugger.resume")
    notice = page.locator("#live-dropped")
    expect(notice).to_contain_text("the server disconnected this page", timeout=15_000)
    expect(notice).to_contain_text("waiting for it unread")
    page.locator("#socket-state", has_text="live").wait_for()
    notice.click()  # dismissed
    expect(notice).to_have_count(0)
    assert page.js_errors == []
