"""A bad broker URL reads on the page in the words of ``/api/health`` (issue 17 item 9), not a pika class name."""

import pytest

from rabbit.localnode import free_port_block
from tests.conftest import PORT_BASE

pytestmark = [pytest.mark.e2e]


def test_the_page_says_why_the_broker_cannot_be_reached(lab_factory, page):
    port = free_port_block(PORT_BASE + 330, size=1)
    lab = lab_factory(f"amqp://guest:guest@127.0.0.1:{port}/")
    page.goto(lab.base_url + "/")
    error = page.locator("#broker-error")
    error.wait_for(state="visible", timeout=15000)
    text = error.inner_text()
    assert f"connection refused at 127.0.0.1:{port}" in text and "next retry at" in text, text
    assert "AMQPConnector" not in page.locator("body").inner_text()
    assert lab.get("/api/health").json()["broker"]["error"] in text
    assert page.js_errors == []
