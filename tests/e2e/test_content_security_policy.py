"""The page works under its Content-Security-Policy: no violation on any panel, and it refuses to be framed."""

import pytest

pytestmark = pytest.mark.e2e

PANELS = ("overview", "topology", "traffic", "watch", "rpc")

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_no_panel_violates_the_content_security_policy(shared_lab, page):
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type in ("error", "warning") else None)
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(shared_lab.base_url + "/")
    page.locator("#broker-status .status-text", has_text="broker connected").wait_for(timeout=10000)
    for panel in PANELS:
        page.goto(f"{shared_lab.base_url}/#{panel}")
        page.locator(f"#panel-{panel}").wait_for(state="visible", timeout=5000)
        page.wait_for_timeout(300)
    violations = page.evaluate("() => window.__cspViolations")
    assert violations == [], violations
    assert [m for m in console if "Content Security Policy" in m] == []
    assert page.js_errors == []
    # The policy is really in force: an inline script is refused (so a clean run above means something).
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__x = 1'; "
        "document.body.append(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__x") is None
    assert any("script-src" in v for v in page.evaluate("() => window.__cspViolations"))


def test_the_page_refuses_to_be_framed(shared_lab, page):
    headers = page.goto(shared_lab.base_url + "/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
