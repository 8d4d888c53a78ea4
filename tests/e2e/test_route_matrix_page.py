"""The routing matrix card in a real browser, on the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_topology_page import cleanup, open_panel  # noqa: F401 (cleanup is a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_the_matrix_shows_which_binding_takes_which_key_explains_on_hover_and_downloads_csv(
    shared_lab,
    page,
    unique,
    cleanup,  # noqa: F811
):
    exchange = unique("animals")
    cleanup["exchanges"].append(exchange)
    assert shared_lab.post("/api/exchanges", {"name": exchange, "type": "topic"}).status_code == 201
    for name, key in (("orange", "*.orange.*"), ("rabbit", "*.*.rabbit"), ("lazy", "lazy.#")):
        queue = unique(name)
        cleanup["queues"].append(queue)
        assert shared_lab.post("/api/queues", {"name": queue}).status_code == 201
        body = {"source": exchange, "destination": queue, "routing_key": key}
        assert shared_lab.post("/api/bindings", body).status_code == 201
    open_panel(page, shared_lab)
    card = page.locator("#route-matrix")
    card.locator(f"#matrix-exchange option[value='{exchange}']").wait_for(state="attached")
    card.locator("#matrix-exchange").select_option(exchange)
    keys = ["quick.orange.rabbit", "lazy.brown.fox", "<i>x</i>"]
    card.locator("#matrix-keys").fill("\n".join(keys))
    card.locator("#matrix-show").click()
    card.locator("#matrix-result[data-state='shown'] table.matrix").wait_for()

    api = shared_lab.post("/api/route/matrix", {"exchange": exchange, "routing_keys": keys}).json()
    rows = card.locator("table.matrix tbody tr")
    assert rows.count() == 3
    for i, key in enumerate(keys):
        row = rows.nth(i)
        assert row.locator("th").text_content() == key  # as text: no <i> element is made
        shown = [c == "✓" for c in row.locator("td").all_text_contents()]
        assert shown == api["cells"][i]
    assert card.locator("table.matrix i").count() == 0
    assert sum(api["cells"][0]) == 2 and sum(api["cells"][1]) == 1

    # Hover: the cell's title becomes the engine's explanation of that binding for that key.
    first = rows.nth(0).locator("td").first
    first.hover()
    page.wait_for_function("(td) => td.title.includes(\"'quick.orange.rabbit'\")", arg=first.element_handle())

    with page.expect_download() as download:
        card.locator("#matrix-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert text[0].startswith("routing_key,")
    assert text[1].startswith("quick.orange.rabbit,")
    assert len(text) == 4
    assert page.js_errors == []
