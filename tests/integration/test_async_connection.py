"""The one runner of asynchronous connections (rabbit/async_connection.py), on its own, against the real broker."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rabbit.async_connection import AsyncConnection, ConnectionHooks
from rabbit.localnode import free_port_block
from tests.conftest import PORT_BASE, wait_until

pytestmark = pytest.mark.broker


class Recorder(ConnectionHooks):
    """Every hook call, in order, as (hook, detail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def on_connection_open(self, connection):
        self.calls.append(("open", connection.is_open))

    def on_connection_open_error(self, reason, error):
        self.calls.append(("open_error", reason))

    def on_connection_closed(self, reason, error):
        self.calls.append(("closed", reason))

    def on_closed(self):
        self.calls.append(("ioloop_ended", None))

    def on_reconnecting(self, delay):
        self.calls.append(("reconnecting", delay))


def run_in_thread(runner: AsyncConnection) -> threading.Thread:
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return thread


def test_a_refused_broker_is_retried_with_backoff_to_its_ceiling_and_logged_once(caplog):
    port = free_port_block(PORT_BASE + 330, size=1)
    hooks = Recorder()
    runner = AsyncConnection(
        f"amqp://guest:guest@127.0.0.1:{port}/",
        hooks,
        name="rl-test-async-refused",
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    with caplog.at_level(logging.INFO, logger="rabbit.async_connection"):
        thread = run_in_thread(runner)
        wait_until(lambda: hooks.names().count("open_error") >= 5, timeout=15, message="five attempts")
        runner.stop()
        thread.join(5)
    assert not thread.is_alive()
    errors = [detail for name, detail in hooks.calls if name == "open_error"]
    assert set(errors) == {f"connection refused at 127.0.0.1:{port}"}
    delays = [detail for name, detail in hooks.calls if name == "reconnecting"]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]
    lines = [r.getMessage() for r in caplog.records if "cannot connect" in r.getMessage()]
    assert len(lines) == 1 and "rl-test-async-refused" in lines[0] and "guest:guest" not in lines[0]


def test_stop_from_another_thread_closes_the_connection_and_ends_run(broker_url):
    hooks = Recorder()
    runner = AsyncConnection(broker_url, hooks, name="rl-test-async-stop")
    thread = run_in_thread(runner)
    wait_until(lambda: "open" in hooks.names(), message="the connection opened")
    assert runner.connection is not None and runner.connection.is_open
    runner.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert hooks.names() == ["open", "closed", "ioloop_ended"]
    assert runner.connection is None


def test_a_lost_socket_reconnects_and_a_ready_owner_starts_the_backoff_over(broker_url):
    hooks = Recorder()
    runner = AsyncConnection(broker_url, hooks, name="rl-test-async-lost", backoff_initial=0.05, backoff_max=1.0)
    thread = run_in_thread(runner)
    try:
        for _ in range(3):
            opened = hooks.names().count("open")
            wait_until(lambda o=opened: hooks.names().count("open") > o, message="connected")
            runner.add_callback_threadsafe(runner.mark_ready)
            time.sleep(0.1)
            assert runner.abort()  # what the lab does to a stuck owner's socket
        wait_until(lambda: hooks.names().count("open") >= 4, message="reconnected after each loss")
    finally:
        runner.stop()
        thread.join(5)
    delays = [detail for name, detail in hooks.calls if name == "reconnecting"]
    assert delays == [0.05, 0.05, 0.05]  # ready each time: never doubled
    closed = [detail for name, detail in hooks.calls if name == "closed"]
    assert all("lost" in reason for reason in closed[:3]), closed


def test_an_exception_in_a_callback_shuts_that_connection_and_reconnects(broker_url, caplog):
    hooks = Recorder()
    runner = AsyncConnection(broker_url, hooks, name="rl-test-async-raise", backoff_initial=0.05)
    thread = run_in_thread(runner)
    try:
        wait_until(lambda: "open" in hooks.names(), message="connected")
        with caplog.at_level(logging.ERROR, logger="rabbit.async_connection"):
            assert runner.add_callback_threadsafe(lambda: 1 / 0)
            wait_until(lambda: hooks.names().count("open") >= 2, message="a new connection")
        assert "ioloop_ended" in hooks.names() and "reconnecting" in hooks.names()
        assert any("ioloop failed" in r.getMessage() for r in caplog.records)
    finally:
        runner.stop()
        thread.join(5)
    assert not thread.is_alive()


def test_a_one_shot_runner_raises_what_ended_its_ioloop_and_does_not_reconnect(broker_url):
    class Raising(Recorder):
        def on_connection_open(self, connection):
            super().on_connection_open(connection)
            connection.ioloop.add_callback_threadsafe(lambda: 1 / 0)  # pika lets this one out of the ioloop

    hooks = Raising()
    runner = AsyncConnection(broker_url, hooks, name="rl-test-async-once", reconnect=False)
    with pytest.raises(ZeroDivisionError):
        runner.run()
    assert hooks.names() == ["open", "ioloop_ended"]
    assert runner.connection is None


def test_a_one_shot_runner_that_cannot_connect_ends_after_one_attempt():
    port = free_port_block(PORT_BASE + 331, size=1)
    hooks = Recorder()
    runner = AsyncConnection(f"amqp://guest:guest@127.0.0.1:{port}/", hooks, name="rl-test-once", reconnect=False)
    started = time.monotonic()
    runner.run()
    assert time.monotonic() - started < 5
    assert hooks.names() == ["open_error", "ioloop_ended"]
