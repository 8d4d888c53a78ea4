"""The page's broker indicator follows the broker live: down when it stops, connected when it is back."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.private_node]


def test_the_status_pill_flips_down_and_back_without_a_reload(private_node, lab_factory, page):
    lab = lab_factory(private_node.amqp_url)
    page.goto(lab.base_url + "/")
    pill = page.locator("#broker-status")
    page.locator("#broker-status[data-state='connected']").wait_for(timeout=10000)

    private_node.stop()
    page.locator("#broker-status[data-state='down'], #broker-status[data-state='reconnecting']").wait_for(timeout=20000)
    assert pill.inner_text().strip() in ("broker down", "reconnecting…")
    page.locator("#status-history li.state-down").first.wait_for(timeout=10000)

    private_node.start()
    page.locator("#broker-status[data-state='connected']").wait_for(timeout=30000)
    assert pill.inner_text().strip() == "broker connected"
    assert page.js_errors == []
