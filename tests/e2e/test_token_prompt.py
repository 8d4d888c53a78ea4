import pytest

pytestmark = pytest.mark.e2e


def test_page_asks_for_the_token_once_then_goes_live(broker_url, lab_factory, page):
    lab = lab_factory(broker_url, RABBITLENS_TOKEN="page-token-42")
    page.goto(lab.base_url + "/")
    page.locator("#token-input").fill("wrong")
    page.keyboard.press("Enter")
    page.locator(".token-dialog .error-text", has_text="wrong access token").wait_for(timeout=5000)
    page.locator("#token-input").fill("page-token-42")
    page.keyboard.press("Enter")
    page.locator("#broker-status .status-text", has_text="broker connected").wait_for(timeout=10000)
    page.reload()
    page.locator("#broker-status .status-text", has_text="broker connected").wait_for(timeout=10000)
    assert page.locator("#token-input").count() == 0
