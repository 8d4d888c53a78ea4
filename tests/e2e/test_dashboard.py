import pytest

pytestmark = pytest.mark.e2e


def test_page_loads_and_shows_the_broker_connected(shared_lab, page):
    page.goto(shared_lab.base_url + "/")
    pill = page.locator("#broker-status")
    pill.locator(".status-text", has_text="broker connected").wait_for(timeout=10000)
    assert pill.get_attribute("data-state") == "connected"
    assert page.locator("#broker-version").inner_text().startswith("3.")
    assert "guest:guest" not in page.content()
    assert page.js_errors == []
