"""RabbitMQ 4.0 removed classic mirrored queues (issue 17 item 19): a queue a policy mirrors (``ha-mode``, read
from the management API's effective policy) says so on the page, on the queue's row."""

from __future__ import annotations

import json
import re

import pika
import pytest

from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.private_node]

REMOVED = "classic mirrored queues were removed in RabbitMQ 4.0: use a quorum queue"


def test_a_queue_a_policy_mirrors_says_classic_mirroring_is_gone(managed_lab, managed_node, page, unique):
    mirrored, plain = unique("mirror-me"), unique("plain")
    policy = unique("ha-policy")
    managed_node.ctl(
        "set_policy", policy, f"^{re.escape(mirrored)}$", json.dumps({"ha-mode": "all"}), "--apply-to", "queues"
    )
    connection = pika.BlockingConnection(pika.URLParameters(managed_node.amqp_url))
    try:
        channel = connection.channel()
        for name in (mirrored, plain):
            channel.queue_declare(name, durable=True)

        def listed():  # the policy reaches the management API's listing within a moment
            queues = {q["name"]: q for q in managed_lab.get("/api/topology").json()["queues"]}
            return "mirrored" in queues.get(mirrored, {}) and queues

        queues = wait_until(listed, timeout=20, message="the mirrored queue listed with its policy")
        assert queues[mirrored]["mirrored"] == f"policy '{policy}' asks for ha-mode all: {REMOVED}"
        assert "mirrored" not in queues[plain]

        page.goto(f"{managed_lab.base_url}/#topology")
        page.locator("#topo-source[data-source='management']").wait_for(timeout=10000)
        row = page.locator("#queue-rows tr", has_text=mirrored)
        note = row.locator(".tag.mirrored")
        note.wait_for(timeout=10000)
        assert REMOVED in note.inner_text()
        assert f"policy '{policy}'" in note.get_attribute("title")
        assert page.locator("#queue-rows tr", has_text=plain).locator(".tag.mirrored").count() == 0
        assert page.js_errors == []
    finally:
        managed_node.ctl("clear_policy", policy)
        channel = connection.channel()
        for name in (mirrored, plain):
            channel.queue_delete(name)
        connection.close()
