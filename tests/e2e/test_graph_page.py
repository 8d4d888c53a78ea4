"""The Graph panel in a real browser on the real broker: the live topology as nodes and edges, messages moving.

Each test runs its own lab process, so the graph holds exactly what the test declared (the lab lists what it
made; built-in exchanges are drawn only when used). The graph's counts are read from the DOM it keeps for tests:
``[data-graph]`` carries ``data-nodes`` / ``data-edges``, ``[data-graph-nodes]`` lists each node with its position,
``[data-graph-flows]`` counts the messages drawn on each edge.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab(lab_factory, broker_url):
    server = lab_factory(broker_url).wait_broker_connected()
    made = {"queues": [], "exchanges": []}
    server.made = made
    yield server
    for queue in made["queues"]:
        server.delete(f"/api/queues/{quote(queue, safe='')}")
    for exchange in made["exchanges"]:
        server.delete(f"/api/exchanges/{quote(exchange, safe='')}")


def declare_exchange(lab, name, kind="topic", **extra):
    response = lab.post("/api/exchanges", {"name": name, "type": kind, **extra})
    assert response.status_code == 201, response.text
    lab.made["exchanges"].append(name)


def declare_queue(lab, name, **extra):
    response = lab.post("/api/queues", {"name": name, **extra})
    assert response.status_code == 201, response.text
    lab.made["queues"].append(name)


def bind(lab, source, destination, key, destination_type="queue", arguments=None):
    body = {"source": source, "destination": destination, "destination_type": destination_type, "routing_key": key}
    response = lab.post("/api/bindings", {**body, "arguments": arguments or {}})
    assert response.status_code == 201, response.text


def open_graph(page, lab):
    page.goto(lab.base_url + "/#graph")
    page.locator("[data-graph]").wait_for(state="attached", timeout=10000)


def wait_counts(page, nodes, edges, timeout=10000):
    page.wait_for_function(
        "([n, e]) => { const g = document.querySelector('[data-graph]');"
        " return g && g.dataset.nodes === String(n) && g.dataset.edges === String(e); }",
        arg=[nodes, edges],
        timeout=timeout,
    )


def positions(page):
    """{node id: (x, y)} in the graph's own coordinates (independent of pan and zoom)."""
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-graph-nodes] li')]"
        ".map((li) => [li.dataset.id, [Number(li.dataset.x), Number(li.dataset.y)]]))"
    )


def flows(page):
    return page.evaluate("() => [...document.querySelectorAll('[data-graph-flows] li')].map((li) => ({...li.dataset}))")


def tutorial_five(lab, unique):
    exchange, q1, q2 = unique("topic_logs"), unique("q1"), unique("q2")
    declare_exchange(lab, exchange, "topic")
    declare_queue(lab, q1)
    declare_queue(lab, q2)
    bind(lab, exchange, q1, "*.orange.*")
    bind(lab, exchange, q2, "*.*.rabbit")
    bind(lab, exchange, q2, "lazy.#")
    return exchange, q1, q2


def test_tutorial_five_is_drawn_and_a_message_animates_into_two_queues(lab, page, unique):
    open_graph(page, lab)
    wait_counts(page, 0, 0)
    exchange, q1, q2 = tutorial_five(lab, unique)  # declared while the page is open: it follows live
    wait_counts(page, 3, 3)
    names = page.eval_on_selector_all("[data-graph-nodes] li", "(items) => items.map((li) => li.dataset.name)")
    assert sorted(names) == sorted([exchange, q1, q2])
    assert page.locator("#graph-summary").inner_text().startswith("1 exchange · 2 queues")

    response = lab.post("/api/publish", {"exchange": exchange, "routing_key": "quick.orange.rabbit", "body": "hi"})
    assert response.json()["routed"] is True
    page.wait_for_function(
        "() => document.querySelectorAll('[data-graph-flows] li[data-kind=binding]').length === 2", timeout=10000
    )
    drawn = {(f["target"], f["key"]): int(f["count"]) for f in flows(page)}
    assert drawn == {(q1, "*.orange.*"): 1, (q2, "*.*.rabbit"): 1}  # not along lazy.#
    assert page.locator("[data-graph]").get_attribute("data-dropped") == "0"
    assert page.js_errors == []


def test_a_deleted_queue_goes_a_new_one_comes_and_the_others_stay_put(lab, page, unique):
    exchange, _q1, q2 = tutorial_five(lab, unique)
    q3 = unique("q3")
    declare_queue(lab, q3)
    bind(lab, exchange, q3, "#")
    open_graph(page, lab)
    wait_counts(page, 4, 4)
    page.wait_for_function("() => document.querySelectorAll('[data-graph-nodes] li').length === 4")
    before = positions(page)

    assert lab.delete(f"/api/queues/{quote(q2, safe='')}").status_code == 204
    lab.made["queues"].remove(q2)
    wait_counts(page, 3, 2)
    page.wait_for_function("() => document.querySelectorAll('[data-graph-nodes] li').length === 3")
    after = positions(page)
    assert f"q:{q2}" not in after
    assert after == {node: xy for node, xy in before.items() if node != f"q:{q2}"}

    q4 = unique("q4")
    declare_queue(lab, q4)
    bind(lab, exchange, q4, "*.orange.*")
    wait_counts(page, 4, 3)
    page.wait_for_function("() => document.querySelectorAll('[data-graph-nodes] li').length === 4")
    again = positions(page)
    assert {node: again[node] for node in after} == after  # nothing else moved
    new_x, new_y = again[f"q:{q4}"]
    ex_x, _ = again[f"x:{exchange}"]
    assert new_x > ex_x  # placed beside its exchange, downstream
    for node, (x, y) in after.items():
        assert abs(x - new_x) > 40 or abs(y - new_y) > 40, f"{q4} placed on top of {node}"
    assert page.js_errors == []


def test_unroutable_and_returned_messages_drop_off_their_exchange(lab, page, unique):
    exchange, _q1, _q2 = tutorial_five(lab, unique)
    open_graph(page, lab)
    wait_counts(page, 3, 3)
    lab.post("/api/publish", {"exchange": exchange, "routing_key": "quick.brown.fox", "body": "x"})
    lab.post("/api/publish", {"exchange": exchange, "routing_key": "lazy", "body": "y"})  # lazy.# takes it
    lab.post("/api/publish", {"exchange": exchange, "routing_key": "slow.brown.fox", "body": "z", "mandatory": True})
    page.wait_for_function("() => document.querySelector('[data-graph]').dataset.dropped === '2'", timeout=10000)
    drops = [f for f in flows(page) if f["kind"] == "drop"]
    assert drops == [
        {"edge": f"drop:x:{exchange}", "kind": "drop", "source": exchange, "target": "", "key": "", "count": "2"}
    ]
    assert [f["key"] for f in flows(page) if f["kind"] == "binding"] == ["lazy.#"]


def test_a_rejected_message_travels_to_its_dead_letter_exchange(lab, page, unique):
    work, dlx, queue, dead = unique("work"), unique("dlx"), unique("jobs"), unique("dead")
    declare_exchange(lab, work, "direct")
    declare_exchange(lab, dlx, "fanout")
    declare_queue(lab, queue, arguments={"x-dead-letter-exchange": dlx})
    declare_queue(lab, dead)
    bind(lab, work, queue, "job")
    bind(lab, dlx, dead, "")
    open_graph(page, lab)
    wait_counts(page, 4, 3)  # work -> jobs, jobs ..> dlx (dead letter), dlx -> dead
    consumer = lab.post("/api/consumers", {"queue": queue, "ack": "manual", "on_message": "reject"}).json()
    wait_counts(page, 5, 4)  # the consumer and its edge
    lab.post("/api/publish", {"exchange": work, "routing_key": "job", "body": "fails"})
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-graph-flows] li')].some((li) => li.dataset.kind === 'deadletter')",
        timeout=10000,
    )
    drawn = {(f["kind"], f["source"], f["target"]): int(f["count"]) for f in flows(page)}
    assert drawn[("binding", work, queue)] == 1
    assert drawn[("consume", queue, consumer["id"])] == 1
    assert drawn[("deadletter", queue, dlx)] == 1
    assert drawn[("binding", dlx, dead)] == 1
    lab.delete(f"/api/consumers/{consumer['id']}")


def test_clicking_an_edge_opens_the_explainer_with_its_exchange_and_a_matching_key(lab, page, unique):
    exchange, q1, _q2 = tutorial_five(lab, unique)
    open_graph(page, lab)
    wait_counts(page, 3, 3)
    page.wait_for_function("() => document.querySelectorAll('[data-graph-nodes] li').length === 3")
    page.wait_for_timeout(300)  # the first fit
    box = page.locator("[data-graph]").bounding_box()
    spots = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-graph-nodes] li')]"
        ".map((li) => [li.dataset.name, [Number(li.dataset.rx), Number(li.dataset.ry)]]))"
    )
    (ax, ay), (bx, by) = spots[exchange], spots[q1]  # one straight edge: *.orange.*
    page.mouse.click(box["x"] + ax + (bx - ax) * 0.62, box["y"] + ay + (by - ay) * 0.62)
    detail = page.locator("#graph-detail")
    detail.get_by_text("*.orange.*").wait_for(timeout=5000)
    detail.locator("#graph-explain").click()
    page.locator("#panel-topology:not([hidden])").wait_for()
    assert page.locator("#route-exchange").input_value() == exchange
    assert page.locator("#route-key").input_value() == "any.orange.any"
    page.locator("#route-result[data-state=routed]").wait_for(timeout=5000)
    assert page.locator("#route-result .route-queue").all_inner_texts() == [q1]

    # And a node: its details as text.
    page.goto(lab.base_url + "/#graph")
    wait_counts(page, 3, 3)
    page.wait_for_timeout(300)
    spots = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-graph-nodes] li')]"
        ".map((li) => [li.dataset.name, [Number(li.dataset.rx), Number(li.dataset.ry)]]))"
    )
    box = page.locator("[data-graph]").bounding_box()  # the explainer's focus scrolled the page
    page.mouse.click(box["x"] + spots[q1][0], box["y"] + spots[q1][1])
    detail.locator("h3", has_text=q1).wait_for(timeout=5000)
    assert "*.orange.*" in detail.inner_text()


def test_sixty_nodes_render_readably_without_console_errors(lab, page, unique):
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    hub, logs, alt, dlx = unique("orders"), unique("logs"), unique("unrouted"), unique("dead")
    declare_exchange(lab, alt, "fanout")
    declare_exchange(lab, hub, "topic", arguments={"alternate-exchange": alt})
    declare_exchange(lab, logs, "direct")
    declare_exchange(lab, dlx, "fanout")
    headers_x = unique("reports")
    declare_exchange(lab, headers_x, "headers")
    bind(lab, hub, logs, "log.*", destination_type="exchange")
    regions = ["eu", "us", "apac", "latam"]
    queues = []
    for index in range(44):
        queue = unique(f"q{index:02d}")
        queues.append(queue)
        arguments = {"x-dead-letter-exchange": dlx} if index % 11 == 0 else {}
        declare_queue(lab, queue, arguments=arguments)
        if index < 24:
            bind(lab, hub, queue, f"order.{regions[index % 4]}.{'*' if index % 2 else '#'}")
        elif index < 34:
            bind(lab, logs, queue, ["info", "warn", "error"][index % 3])
        elif index < 40:
            bind(lab, headers_x, queue, "", arguments={"x-match": "all", "format": ["pdf", "csv"][index % 2]})
        else:
            bind(lab, alt if index < 42 else dlx, queue, "")
    consumers = [lab.post("/api/consumers", {"queue": q}).json()["id"] for q in queues[:11]]
    expected_nodes = 5 + 44 + len(consumers)
    assert expected_nodes >= 60
    page.set_viewport_size({"width": 1440, "height": 900})
    open_graph(page, lab)
    expected_edges = 1 + 44 + 1 + 4 + len(consumers)  # e2e, bindings, alternate, dead letters, consumes
    wait_counts(page, expected_nodes, expected_edges, timeout=15000)
    for key in ("order.eu.big", "order.us.small.box", "nobody.wants.this"):
        lab.post("/api/publish", {"exchange": hub, "routing_key": key, "body": json.dumps({"key": key})})
    page.wait_for_function("() => Number(document.querySelector('[data-graph]').dataset.animated) >= 3")
    page.wait_for_timeout(350)  # mid-flight
    shots = ROOT / "test-results"
    shots.mkdir(exist_ok=True)
    page.locator("#graph-card").screenshot(path=str(shots / "graph-60-nodes.png"))

    spread = page.evaluate(
        "() => [...document.querySelectorAll('[data-graph-nodes] li')].map((li) => [Number(li.dataset.x),"
        " Number(li.dataset.y)])"
    )
    assert len(spread) == expected_nodes
    overlapping = [
        (a, b) for i, a in enumerate(spread) for b in spread[i + 1 :] if abs(a[0] - b[0]) < 20 and abs(a[1] - b[1]) < 20
    ]
    assert overlapping == []  # the layered layout keeps nodes apart
    for consumer in consumers:
        lab.delete(f"/api/consumers/{consumer}")
    wait_counts(page, 5 + 44, expected_edges - len(consumers))
    assert page.js_errors == []
    assert console_errors == []


def test_an_expired_message_is_drawn_from_its_queue_to_the_dead_letter_exchange(lab, page, unique):
    """Expiry happens inside the broker; the dead letter's x-death, on its delivery, says where it came from."""
    work, dlx, short, dead = unique("work"), unique("dlx"), unique("short"), unique("dead")
    declare_exchange(lab, work, "direct")
    declare_exchange(lab, dlx, "fanout")
    declare_queue(lab, short, arguments={"x-message-ttl": 200, "x-dead-letter-exchange": dlx})
    declare_queue(lab, dead)
    bind(lab, work, short, "job")
    bind(lab, dlx, dead, "")
    consumer = lab.post("/api/consumers", {"queue": dead}).json()
    open_graph(page, lab)
    wait_counts(page, 5, 4)
    lab.post("/api/publish", {"exchange": work, "routing_key": "job", "body": "too slow"})
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-graph-flows] li')].some((li) => li.dataset.kind === 'consume')",
        timeout=10000,
    )
    drawn = {(f["kind"], f["source"], f["target"]): int(f["count"]) for f in flows(page)}
    assert drawn == {
        ("binding", work, short): 1,
        ("deadletter", short, dlx): 1,
        ("binding", dlx, dead): 1,
        ("consume", dead, consumer["id"]): 1,
    }
    lab.delete(f"/api/consumers/{consumer['id']}")


def test_at_high_rates_messages_travel_as_counted_batches(lab, page, unique):
    exchange, q1, _q2 = tutorial_five(lab, unique)
    consumer = lab.post("/api/consumers", {"queue": q1}).json()
    open_graph(page, lab)
    wait_counts(page, 4, 4)
    burst = lab.post(
        "/api/publish", {"exchange": exchange, "routing_key": "a.orange.b", "body": "x", "count": 400}
    ).json()
    assert burst["counts"]["routed"] == 400
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-graph-flows] li')].some((li) => li.dataset.kind === 'consume'"
        " && li.dataset.count === '400')",
        timeout=15000,
    )
    page.wait_for_timeout(600)  # the last batch leaves
    dots = int(page.locator("[data-graph]").get_attribute("data-dots"))
    assert 0 < dots < 150, f"{dots} dots for 400 deliveries: not batched"
    assert page.js_errors == []
    lab.delete(f"/api/consumers/{consumer['id']}")


PATTERNS = ["*.orange.*", "*.*.rabbit", "lazy.#", "#", "*", "#.b", "a.#.b", "a.*.#", "#.#", "a..b", "", "a.#.*.c"]
KEYS = [
    "quick.orange.rabbit",
    "lazy",
    "lazy.orange.elephant",
    "a.b",
    "a.x.y.b",
    "a",
    "",
    "a..b",
    "a.b.c",
    "b",
    "a.c",
    ".",
    "orange.rabbit",
]


def test_the_graphs_topic_matcher_picks_the_edges_the_routing_engine_matches(lab, page, unique):
    """The graph picks which binding edges a message takes with its own small matcher: it must agree with the
    lab's engine (itself checked against the broker) on every pattern and key here."""
    exchange = unique("topics")
    declare_exchange(lab, exchange, "topic")
    queues = {}
    for index, pattern in enumerate(PATTERNS):
        queue = unique(f"p{index}")
        declare_queue(lab, queue)
        bind(lab, exchange, queue, pattern)
        queues[queue] = pattern
    open_graph(page, lab)
    for key in KEYS:
        engine = set(lab.post("/api/route", {"exchange": exchange, "routing_key": key}).json()["queues"])
        graph = page.evaluate(
            "async ([patterns, key]) => { const m = await import('/static/js/graph-model.js');"
            " return patterns.map((p) => m.topicMatches(p, key)); }",
            [list(queues.values()), key],
        )
        mine = {queue for queue, matched in zip(queues, graph, strict=True) if matched}
        assert mine == engine, f"key {key!r}"


def test_with_trace_on_another_applications_publishes_are_drawn(managed_lab, managed_node, page, unique):
    """Traffic the lab did not send shows through the firehose, along the bindings the broker routed it by."""
    import pika

    exchange, q1, q2 = tutorial_five(managed_lab_with_made(managed_lab), unique)
    assert managed_lab.post("/api/trace", {"enabled": True}).status_code == 200
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    try:
        open_graph(page, managed_lab)
        page.wait_for_function(
            "(names) => names.every((n) => [...document.querySelectorAll('[data-graph-nodes] li')]"
            ".some((li) => li.dataset.name === n))",
            arg=[exchange, q1, q2],
            timeout=15000,
        )
        channel = connection.channel()
        channel.basic_publish(exchange, "lazy.orange.rabbit", b"from elsewhere")
        channel.basic_publish(exchange, "quick.brown.fox", b"nobody")
        page.wait_for_function(  # one dot per queue reached, one for the drop
            "() => Number(document.querySelector('[data-graph]').dataset.animated) >= 3", timeout=10000
        )
        drawn = {(f["kind"], f["target"], f["key"]): int(f["count"]) for f in flows(page)}
        assert drawn[("binding", q1, "*.orange.*")] == 1
        assert drawn[("binding", q2, "*.*.rabbit")] + drawn.get(("binding", q2, "lazy.#"), 0) == 1
        assert page.locator("[data-graph]").get_attribute("data-dropped") == "1"
        # The lab's own publish is in the firehose too: drawn once, from its own event.
        managed_lab.post("/api/publish", {"exchange": exchange, "routing_key": "a.orange.b", "body": "mine"})
        page.wait_for_function(
            "() => Number(document.querySelector('[data-graph]').dataset.animated) >= 4", timeout=10000
        )
        page.wait_for_timeout(1000)  # a second drawing, from the trace, would come by now
        assert page.locator("[data-graph]").get_attribute("data-animated") == "4"  # 2 + 1 dropped + 1
        assert {(f["target"], f["key"]): int(f["count"]) for f in flows(page)}[(q1, "*.orange.*")] == 2
    finally:
        connection.close()
        managed_lab.post("/api/trace", {"enabled": False})
        for queue in managed_lab.made["queues"]:
            managed_lab.delete(f"/api/queues/{quote(queue, safe='')}")
        for name in managed_lab.made["exchanges"]:
            managed_lab.delete(f"/api/exchanges/{quote(name, safe='')}")


def managed_lab_with_made(server):
    server.made = {"queues": [], "exchanges": []}
    return server


def test_full_screen_and_larger_type_follow_the_page_presenter_mode(lab, page, unique):
    tutorial_five(lab, unique)
    open_graph(page, lab)
    wait_counts(page, 3, 3)
    section = page.locator("#panel-graph")
    assert "graph-large" not in section.get_attribute("class")
    page.evaluate("() => document.body.classList.add('presenter')")
    page.wait_for_function("() => document.querySelector('#panel-graph').classList.contains('graph-large')")
    page.evaluate("() => document.body.classList.remove('presenter')")
    page.wait_for_function("() => !document.querySelector('#panel-graph').classList.contains('graph-large')")
    page.locator("#graph-large").click()
    assert page.locator("#graph-large").get_attribute("aria-pressed") == "true"
    assert "graph-large" in section.get_attribute("class")
    page.reload()  # remembered
    page.wait_for_function("() => document.querySelector('#panel-graph').classList.contains('graph-large')")
    page.locator("#graph-fullscreen").click()
    page.wait_for_function("() => document.fullscreenElement && document.fullscreenElement.id === 'graph-card'")
    assert page.locator("#graph-fullscreen").get_attribute("aria-pressed") == "true"
    page.wait_for_function(
        "() => document.querySelector('[data-graph]').getBoundingClientRect().height > window.innerHeight * 0.6"
    )
    page.locator("#graph-fullscreen", has_text="Leave full screen").click()
    page.wait_for_function("() => !document.fullscreenElement")
    assert page.js_errors == []


def test_the_default_exchange_is_drawn_once_used_and_goes_with_its_queue(lab, page, unique):
    exchange, q1, q2 = tutorial_five(lab, unique)
    open_graph(page, lab)
    wait_counts(page, 3, 3)  # no default exchange, no amq.* exchanges: nothing used them
    lab.post("/api/publish", {"exchange": "", "routing_key": q1, "body": "straight to the queue"})
    wait_counts(page, 4, 4)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-graph-flows] li')].some((li) => li.dataset.kind === 'default')"
    )
    default = page.locator("[data-graph-nodes] li[data-kind=default]")
    assert default.get_attribute("data-id") == "x:"
    assert [f["target"] for f in flows(page) if f["kind"] == "default"] == [q1]
    assert lab.delete(f"/api/queues/{quote(q1, safe='')}").status_code == 204
    lab.made["queues"].remove(q1)
    wait_counts(page, 2, 2)  # the queue, its binding, the default exchange's edge and node: all gone
    assert page.locator("[data-graph-nodes] li[data-kind=default]").count() == 0
    page.wait_for_function("() => !document.querySelector('[data-graph-flows] li[data-kind=default]')")  # counts too
    assert sorted(
        page.eval_on_selector_all("[data-graph-nodes] li", "(l) => l.map((li) => li.dataset.name)")
    ) == sorted([exchange, q2])
