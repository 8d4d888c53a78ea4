"""The status pill says when the broker blocks publishers (a memory alarm) and goes back when it clears."""

import pytest

from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.private_node]

BLOCKED = "the broker is blocking publishers: memory alarm"


def test_the_pill_shows_a_memory_alarm_and_its_end(private_node, lab_factory, page, unique):
    lab = lab_factory(private_node.amqp_url).wait_broker_connected()
    page.goto(lab.base_url + "/")
    pill = page.locator("#broker-status")
    page.locator("#broker-status[data-state='connected']").wait_for(timeout=10000)
    publish = {"routing_key": unique("nowhere"), "body": "x"}
    private_node.ctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        wait_until(
            lambda: lab.post("/api/publish", publish).status_code == 503, timeout=30, interval=0.2, message="blocked"
        )
        page.locator("#broker-status[data-state='blocked']").wait_for(timeout=10000)
        assert pill.inner_text().strip() == BLOCKED
    finally:
        private_node.ctl("set_vm_memory_high_watermark", "0.4")
    page.locator("#broker-status[data-state='connected']").wait_for(timeout=30000)
    assert pill.inner_text().strip() == "broker connected"
    assert page.js_errors == []
