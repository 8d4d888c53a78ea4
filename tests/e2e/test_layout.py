"""The page's layout in a real chromium at a projector's 1024x768 and a laptop's 1440x900: nothing that teaches
(routing keys, binding keys, queue names, lab ids, badges) is cut off, each view's result is on screen without
scrolling, and presenter mode survives a reload."""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

SIZES = [pytest.param((1440, 900), id="1440x900"), pytest.param((1024, 768), id="1024x768")]

# Elements under `root` (a selector) whose content is cut off: wider than their own box (hidden by overflow or an
# ellipsis, or spilling over the next cell), or sticking out past the root's right edge (off a scrolled card).
# Form fields scroll by nature and table headers are fixed labels; td.body is the feed's body preview, cut at 80
# characters anyway and shown whole in the detail view.
CLIPPED_JS = """(selectors) => {
  const out = [];
  for (const selector of selectors) {
    const root = document.querySelector(selector);
    if (!root) { out.push(`${selector}: missing`); continue; }
    const edge = root.getBoundingClientRect().right;
    if (root.scrollWidth > root.clientWidth + 1) out.push(`${selector} scrolls sideways`);
    for (const node of root.querySelectorAll("*")) {
      if (node.closest("input, select, textarea, th, td.body, option, datalist, [hidden]")) continue;
      if (!node.getClientRects().length) continue;
      const text = (node.textContent || "").trim().slice(0, 60);
      if (node.clientWidth > 0 && node.scrollWidth > node.clientWidth + 1) {
        out.push(`${selector} ${node.tagName}.${node.className}: ${node.scrollWidth} > ${node.clientWidth} "${text}"`);
      } else if (node.getBoundingClientRect().right > edge + 1) {
        out.push(`${selector} ${node.tagName}.${node.className}: sticks out by ${
          Math.round(node.getBoundingClientRect().right - edge)} px "${text}"`);
      }
    }
  }
  return out;
}"""

IN_VIEW_JS = """(selectors) => selectors.map((selector) => {
  const node = document.querySelector(selector);
  if (!node) return `${selector}: missing`;
  const box = node.getBoundingClientRect();
  if (!box.height) return `${selector}: not shown`;
  return box.top >= 0 && box.bottom <= innerHeight ? "" : `${selector}: ${box.top}..${box.bottom} of ${innerHeight}`;
}).filter(Boolean)"""


def long_name(prefix: str, length: int) -> str:
    return (prefix + "-" + "abcdefghij-" * 30)[:length].rstrip("-")


@pytest.fixture
def long_topology(shared_lab, unique):
    """A topic exchange with a 100-character queue bound by a 120-character key, plus the tutorial's *.orange.*
    on a short queue; a consumer on each, so that deliveries name the queues."""
    exchange, short_queue = unique("layout"), unique("orange")
    queue = long_name(unique("layout-q"), 100)
    key = ".".join(f"word{i:02d}-of-a-long-key" for i in range(8))[:120]
    assert len(queue) == 100 and len(key) == 120
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "topic"}).status_code == 201
    for name, binding_key in ((queue, key), (short_queue, "*.orange.*")):
        assert shared_lab.post("/api/queues", {"name": name}).status_code == 201
        binding = {"source": exchange, "destination": name, "destination_type": "queue", "routing_key": binding_key}
        assert shared_lab.post("/api/bindings", binding).status_code == 201
    consumers = [shared_lab.post("/api/consumers", {"queue": q}).json()["id"] for q in (queue, short_queue)]
    yield {"exchange": exchange, "queue": queue, "short_queue": short_queue, "key": key}
    for consumer in consumers:
        shared_lab.delete(f"/api/consumers/{consumer}")
    for name in (queue, short_queue):
        shared_lab.delete(f"/api/queues/{quote(name, safe='')}")
    shared_lab.delete(f"/api/exchanges/{quote(exchange, safe='')}")


@pytest.fixture
def sized_page(browser):
    """sized_page((width, height)) -> a fresh page of that viewport; its js_errors collects uncaught errors."""
    contexts = []

    def make(size):
        width, height = size
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()


def open_panel(page, lab, name: str):
    page.goto(f"{lab.base_url}/#{name}")
    page.locator("#broker-status[data-state='connected']").wait_for(timeout=10000)
    page.locator(f"section[data-panel='{name}'][data-ready='true']").wait_for(state="visible", timeout=10000)


def select_tab(page, name: str):
    page.locator(f".tab[data-panel='{name}']").click()
    page.locator(f"section[data-panel='{name}']").wait_for(state="visible")


def explain(page, exchange: str, key: str):
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('#route-exchange option')].some((o) => o.value === name)",
        arg=exchange,
    )
    page.select_option("#route-exchange", exchange)
    page.fill("#route-key", key)
    page.locator("#route-result .route-verdict").wait_for(timeout=10000)
    page.wait_for_function("() => document.querySelector('#route-busy').hidden")


@pytest.mark.parametrize("presenter", [False, True], ids=["normal", "presenter"])
@pytest.mark.parametrize("size", SIZES)
def test_no_key_or_queue_name_is_cut_off(shared_lab, sized_page, long_topology, size, presenter):
    t = long_topology
    page = sized_page(size)
    open_panel(page, shared_lab, "traffic")
    if presenter:
        page.get_by_role("button", name="Presenter").click()
        assert page.evaluate("() => document.body.classList.contains('presenter')")
    published = []
    for key in (t["key"], "quick.orange.rabbit", "no.such.route"):
        reply = shared_lab.post(
            "/api/publish", {"exchange": t["exchange"], "routing_key": key, "body": "x" * 300, "mandatory": True}
        )
        assert reply.status_code == 200, reply.text
        published.append(reply.json()["id"])
    # the long key's publish and delivery, the tutorial one's, and the unroutable one's publish and return
    for message_id in published:
        page.locator("#feed-rows tr", has_text=message_id).first.wait_for(timeout=10000)
    page.locator("#feed-rows tr[data-kind='delivery']", has_text=t["queue"]).wait_for(timeout=10000)
    page.locator("#feed-rows tr[data-kind='returned']").first.wait_for(timeout=10000)
    page.locator("#feed-rows tr .badge", has_text="published · unroutable").wait_for()
    long_rows = page.locator("#feed-rows tr", has_text=published[0])
    assert t["key"] in long_rows.first.inner_text().replace("\n", "")
    assert page.evaluate(CLIPPED_JS, ["#feed-rows", ".feed-scroll"]) == []

    # the detail view of the long key's delivery shows the key and the queue whole
    page.locator("#feed-rows tr[data-kind='delivery']", has_text=published[0]).click()
    page.locator("#message-detail").wait_for(state="visible")
    assert page.evaluate(CLIPPED_JS, ["#detail-body"]) == []
    page.keyboard.press("Escape")

    select_tab(page, "topology")
    page.locator(f"#binding-rows tr[data-destination='{t['queue']}']").wait_for(timeout=10000)
    page.locator(f"#queue-rows tr[data-name='{t['queue']}']").wait_for()
    explain(page, t["exchange"], t["key"])
    assert page.locator("#route-result .route-match").count() == 1
    assert page.evaluate(CLIPPED_JS, ["#binding-rows", "#queue-rows", "#exchange-rows", "#route-explainer"]) == []
    # a miss too: the explainer's reason for *.orange.* and the long key's binding, both whole
    explain(page, t["exchange"], "quick.orange.rabbit.and-then-some-more-words")
    page.wait_for_function("() => document.querySelectorAll('#route-result .route-miss').length === 2")
    assert page.evaluate(CLIPPED_JS, ["#route-explainer"]) == []
    assert page.js_errors == []


@pytest.mark.parametrize("size", SIZES)
def test_each_views_result_is_on_screen_without_scrolling(shared_lab, sized_page, long_topology, unique, size):
    t = long_topology
    page = sized_page(size)
    open_panel(page, shared_lab, "traffic")

    # Traffic: publish from the form and see the answer and the message in the feed.
    form = page.locator("#publish-form")
    form.locator("input[name='exchange']").fill(t["exchange"])
    form.locator("input[name='routing_key']").fill("quick.orange.rabbit")
    form.locator("#publish-button").click()
    page.locator("#publish-result", has_text="Confirmed").wait_for(timeout=10000)
    message_id = page.locator("#publish-result code").inner_text()
    page.locator("#feed-rows tr[data-kind='delivery']", has_text=message_id).wait_for(timeout=10000)
    page.evaluate("() => window.scrollTo(0, 0)")
    assert page.evaluate(IN_VIEW_JS, ["#publish-button", "#publish-result", "#feed-rows tr:first-child"]) == []

    # Topology: the explainer's answer beside its input.
    select_tab(page, "topology")
    explain(page, t["exchange"], "quick.orange.rabbit")
    page.evaluate("() => window.scrollTo(0, 0)")
    assert page.evaluate(IN_VIEW_JS, ["#route-key", "#route-result .route-verdict", "#route-result .route-match"]) == []

    # RPC: the call and its result.
    queue = unique("layout-rpc")
    started = shared_lab.post("/api/rpc/servers", {"count": 1, "queue": queue})
    assert started.status_code in (200, 201), started.text
    try:
        select_tab(page, "rpc")
        panel = page.locator("section[data-panel='rpc']")
        panel.get_by_label("Queue", exact=True).fill(queue)
        panel.get_by_label("n", exact=True).fill("90")
        panel.get_by_role("button", name="Call", exact=True).click()
        page.locator('#rpc-call-result [data-field="result"]', has_text="2880067194370816120").wait_for(timeout=15000)
        page.evaluate("() => window.scrollTo(0, 0)")
        assert page.evaluate(IN_VIEW_JS, ["#rpc-call-form button[type='submit']", "#rpc-call-result"]) == []
    finally:
        for server in shared_lab.get("/api/rpc/servers").json()["servers"]:
            if server["queue"] == queue:
                shared_lab.delete(f"/api/rpc/servers/{server['id']}?kill=1")
        shared_lab.delete("/api/rpc/servers?stopped=1")  # killed servers stay listed until cleared
        shared_lab.delete(f"/api/queues/{quote(queue, safe='')}")
    assert page.js_errors == []


def test_presenter_mode_is_a_remembered_keyboard_toggle(shared_lab, sized_page):
    page = sized_page((1024, 768))
    open_panel(page, shared_lab, "traffic")
    toggle = page.get_by_role("button", name="Presenter")
    assert toggle.get_attribute("aria-pressed") == "false"
    assert page.evaluate("() => document.body.classList.contains('presenter')") is False
    size = "() => parseFloat(getComputedStyle(document.querySelector('table.feed')).fontSize)"
    normal = page.evaluate(size)

    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.evaluate("() => document.body.classList.contains('presenter')") is True
    assert page.evaluate(size) > normal * 1.1

    page.reload()
    page.locator("section[data-panel='traffic'][data-ready='true']").wait_for(state="visible")
    assert page.evaluate("() => document.body.classList.contains('presenter')") is True
    assert page.get_by_role("button", name="Presenter").get_attribute("aria-pressed") == "true"
    assert page.evaluate(size) > normal * 1.1

    page.get_by_role("button", name="Presenter").focus()
    page.keyboard.press("Space")
    page.reload()
    page.locator("section[data-panel='traffic'][data-ready='true']").wait_for(state="visible")
    assert page.evaluate("() => document.body.classList.contains('presenter')") is False
    assert page.get_by_role("button", name="Presenter").get_attribute("aria-pressed") == "false"
    assert page.js_errors == []
