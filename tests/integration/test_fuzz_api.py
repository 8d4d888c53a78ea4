"""Fuzz every route of ``/api/openapi.json`` with schemathesis: no request may yield a 500 or cost the broker link.

It runs against a private node (random names must never land on the shared broker) with a bounded number of
examples per operation (``RABBITLENS_FUZZ_EXAMPLES``, default 25). schemathesis runs as its own command
(its pytest plugin does not load under this pytest), against a real lab server. Every phase runs, the stateful one
too: it follows the OpenAPI links (create a queue, exchange, consumer, tap or fib server, then read, purge and
delete it). ``fuzz_hooks.py`` caps the RPC timeouts and simulated work the fuzzer may ask for, so that correct
but slow answers (a 504 after 120 s) stay within the suite's time budget.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import PORT_BASE, ROOT, launch_lab, start_private_node

pytestmark = [pytest.mark.broker, pytest.mark.private_node]

EXAMPLES = int(os.environ.get("RABBITLENS_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def fuzz_lab(tmp_path):
    node = start_private_node(tmp_path / "node", PORT_BASE + 200, management=True)
    lab = launch_lab(node.amqp_url, tmp_path / "lab.log", node.management_url).wait_broker_connected()
    yield lab
    lab.stop()
    node.stop()


def test_no_request_yields_a_500_or_drops_the_broker(fuzz_lab, tmp_path):
    before = requests.get(fuzz_lab.base_url + "/api/health", timeout=10).json()["broker"]
    assert before["connected"]
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "--no-color",
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            fuzz_lab.base_url + "/api/openapi.json",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "20261127",
            "--request-timeout",
            "30",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--generation-deterministic",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks", "PYTHONPATH": str(ROOT)},
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout or "passed" in result.stdout, report
    assert "Stateful (disabled)" not in result.stdout and "Stateful" in result.stdout, report
    after = requests.get(fuzz_lab.base_url + "/api/health", timeout=10).json()["broker"]
    assert after["connected"], "the broker link was lost during the fuzz run"
    assert after["since"] == before["since"], "the broker link dropped and reconnected during the fuzz run"
    assert fuzz_lab.process.poll() is None


def test_the_stateful_phase_can_undo_what_it_makes(shared_lab):
    """The OpenAPI links the stateful phase follows: a binding it makes is unmade, a burst it runs is cancelled,
    each through the route that does it, with the created resource's own fields."""
    paths = shared_lab.get("/api/openapi.json").json()["paths"]
    burst = paths["/api/rpc/burst"]["post"]["responses"]["200"]["links"]
    assert burst["delete_/api/rpc/bursts/{burst_id}"]["parameters"] == {"burst_id": "$response.body#/burst_id"}
    bound = paths["/api/bindings"]["post"]["responses"]["201"]["links"]
    body = bound["delete_/api/bindings"]["requestBody"]
    assert body["source"] == "$response.body#/source" and body["routing_key"] == "$response.body#/routing_key"
    assert set(body) == {"source", "destination", "destination_type", "routing_key", "arguments"}
    assert "/api/rpc/bursts/{burst_id}" in paths and "delete" in paths["/api/bindings"]
