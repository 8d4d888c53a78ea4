"""Shared fixtures: the real broker, private nodes, a real lab server process, a real browser.

Tests run without gevent's patching: ``rabbit/`` uses plain threads, which work both ways.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pytest

from rabbit.localnode import PrivateNode, free_port_block, port_open, start_private_node
from rabbit.urls import DEFAULT_AMQP_URL
from web import launcher
from web.launcher import LabServer

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
def launch_lab(
    amqp_url: str, log_path: Path, management_url: str | None = None, extra_env: dict[str, str] | None = None
) -> LabServer:
    """Start ``python app.py`` on a free port (from this suite's port base) and wait for it to answer."""
    return launcher.launch_lab(amqp_url, log_path, management_url, extra_env, start_port=PORT_BASE + 1328)


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
