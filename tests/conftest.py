"""Shared fixtures: the real broker, private nodes, a real lab server process, a real browser.

Tests run without gevent's patching: ``rabbit/`` uses plain threads, which work both ways.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pytest
import requests

from rabbit.localnode import PrivateNode, free_port_block, port_open
from rabbit.urls import DEFAULT_AMQP_URL

ROOT = Path(__file__).resolve().parent.parent
# Private nodes and lab servers take ports from here up (45672: clear of rabbitmqctl's 35672-35682).
# Two suites running at once on one machine should use different bases.
PORT_BASE = int(os.environ.get("RABBITLENS_TEST_PORT_BASE", "45672"))


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, message: str = "condition"
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """unique("queue") -> "rl-test-queue-1a2b3c4d": names no other test (or app) uses."""
    token = uuid.uuid4().hex[:8]
    return lambda label="x": f"rl-test-{label}-{token}"


# --------------------------------------------------------------------------- brokers
@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared broker (RABBITLENS_TEST_AMQP_URL, else the local default); a private node if none answers."""
    url = os.environ.get("RABBITLENS_TEST_AMQP_URL")
    if url:
        yield url
        return
    if port_open(5672):
        yield DEFAULT_AMQP_URL
        return
    port = free_port_block(PORT_BASE + 128)
    node = PrivateNode(tmp_path_factory.mktemp("shared-node"), amqp_port=port)
    node.start()
    try:
        yield node.amqp_url
    finally:
        node.stop()


@dataclass
class Amqp:
    """A plain pika connection for tests, which removes what the test declared."""

    connection: pika.BlockingConnection
    channel: pika.adapters.blocking_connection.BlockingChannel
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def fresh_channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        if not self.channel.is_open:
            self.channel = self.connection.channel()
        return self.channel

    def cleanup(self) -> None:
        for name in self.queues:
            self.fresh_channel().queue_delete(name)
        for name in self.exchanges:
            self.fresh_channel().exchange_delete(name)


@pytest.fixture
def amqp(broker_url: str) -> Iterator[Amqp]:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    helper = Amqp(connection, connection.channel())
    try:
        yield helper
    finally:
        try:
            helper.cleanup()
        finally:
            connection.close()


def start_private_node(base: Path, start_port: int, management: bool) -> PrivateNode:
    port = free_port_block(start_port, size=4)
    node = PrivateNode(base, amqp_port=port, management_port=port + 2 if management else None)
    return node.start()


@pytest.fixture
def private_node(tmp_path: Path) -> Iterator[PrivateNode]:
    """A node of the test's own, free to stop, kill and restart (never the shared broker)."""
    node = start_private_node(tmp_path / "node", PORT_BASE, management=False)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def own_managed_node(tmp_path: Path) -> Iterator[PrivateNode]:
    """A node with the management API for this test alone: free to restart, and every count on it is this
    test's own (the session's ``managed_node`` is shared)."""
    node = start_private_node(tmp_path / "own-node", PORT_BASE + 160, management=True)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def managed_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateNode]:
    """A private node with the management plugin, shared by tests that need the HTTP API (not stopped by them)."""
    node = start_private_node(tmp_path_factory.mktemp("managed-node"), PORT_BASE + 88, management=True)
    try:
        yield node
    finally:
        node.stop()


# --------------------------------------------------------------------------- the lab server
@dataclass
class LabServer:
    process: subprocess.Popen
    base_url: str
    log_path: Path

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.base_url + path, timeout=15, **kwargs)

    def post(self, path: str, json: object = None, **kwargs: object) -> requests.Response:
        return requests.post(self.base_url + path, json=json, timeout=30, **kwargs)

    def delete(self, path: str, **kwargs: object) -> requests.Response:
        return requests.delete(self.base_url + path, timeout=15, **kwargs)

    def wait_broker_connected(self, timeout: float = 20.0) -> LabServer:
        """Wait until the lab's broker link is up: it answers HTTP before its first connection is made, and a
        test that compares the link's status before and after would see that first connect as a drop."""
        wait_until(
            lambda: self.get("/api/health").json()["broker"]["connected"],
            timeout=timeout,
            message=f"the lab's broker link to connect ({self.log_path})",
        )
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def launch_lab(
    amqp_url: str, log_path: Path, management_url: str | None = None, extra_env: dict[str, str] | None = None
) -> LabServer:
    """Start ``python app.py`` on a free port against ``amqp_url`` and wait for it to answer."""
    port = free_port_block(PORT_BASE + 1328, size=1)
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--amqp-url", amqp_url]
    if management_url:
        args += ["--management-url", management_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    out = log_path.open("wb")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    server = LabServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lab server exited early:\n{server.log_text()}")
        try:
            if requests.get(server.base_url + "/api/session", timeout=1).ok:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"lab server did not answer within 20s:\n{server.log_text()}")


@pytest.fixture
def lab_factory(tmp_path: Path) -> Iterator[Callable[..., LabServer]]:
    """lab_factory(amqp_url, management_url=None) -> a running lab server, stopped after the test."""
    servers: list[LabServer] = []

    def factory(amqp_url: str, management_url: str | None = None, **env: str) -> LabServer:
        server = launch_lab(amqp_url, tmp_path / f"lab-{len(servers)}.log", management_url, env)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_lab(broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One lab server on the shared broker for tests that only read or use unique names."""
    server = launch_lab(broker_url, tmp_path_factory.mktemp("shared-lab") / "lab.log").wait_broker_connected()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def managed_lab(managed_node: PrivateNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One lab server on the private node that has the management API."""
    server = launch_lab(
        managed_node.amqp_url, tmp_path_factory.mktemp("managed-lab") / "lab.log", managed_node.management_url
    ).wait_broker_connected()
    yield server
    server.stop()


# --------------------------------------------------------------------------- the browser
@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("RABBITLENS_CHROMIUM", "/usr/bin/chromium"),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()
