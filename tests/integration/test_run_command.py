"""The run command's broker fallback: with no broker on the local port it starts a private node, and stops it."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from rabbit.localnode import free_port_block, port_open
from tests.conftest import PORT_BASE, ROOT, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]


def test_serve_starts_a_private_node_when_no_broker_answers_and_stops_it(tmp_path):
    empty_port = free_port_block(PORT_BASE + 300, size=1)
    app_port = free_port_block(PORT_BASE + 1400, size=1)
    env = {
        **os.environ,
        "RABBITLENS_LOCAL_BROKER_PORT": str(empty_port),
        "RABBITLENS_PRIVATE_NODE_PORT": str(PORT_BASE + 320),
        "RABBITLENS_RUN_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("RABBITLENS_AMQP_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "--port", str(app_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    output = lambda: (tmp_path / "serve.log").read_text()  # noqa: E731
    try:
        wait_until(lambda: "is serving on" in output(), timeout=90, message="the app serving")
        node_port = int(re.search(r"private RabbitMQ node on (\d+)", output()).group(1))
        health = wait_until(
            lambda: (
                (h := requests.get(f"http://127.0.0.1:{app_port}/api/health", timeout=5).json())["broker"]["connected"]
                and h
            ),
            timeout=20,
            message="connected to the private node",
        )
        assert health["broker"]["url"] == f"amqp://guest@127.0.0.1:{node_port}/%2F"
        assert health["management"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        deadline = time.monotonic() + 30
        while port_open(node_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not port_open(node_port), "the private node outlived the app"
        assert "Stopping the private RabbitMQ node" in output()
    finally:
        if process.poll() is None:  # a failed check: still stop the node through serve.py's own clean-up
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
