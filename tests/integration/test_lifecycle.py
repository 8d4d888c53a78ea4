"""The app stops cleanly on SIGTERM: its clean-up runs (fib servers stopped) and it exits with 0."""

import os
import signal

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.broker


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its (dead) parent's reaper counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_runs_the_clean_up_and_exits_zero(broker_url, lab_factory, unique, amqp):
    lab = lab_factory(broker_url)
    queue = unique("rpc")
    amqp.queues.append(queue)  # the fib server declares it: removed after the test
    started = lab.post("/api/rpc/servers", {"count": 1, "queue": queue})
    assert started.status_code == 201, started.text
    pid = started.json()["servers"][0]["pid"]
    wait_until(lambda: process_alive(pid), message="the fib server running")

    lab.process.send_signal(signal.SIGTERM)
    assert lab.process.wait(20) == 0
    assert "SIGTERM: shutting down" in lab.log_text()
    wait_until(lambda: not process_alive(pid), timeout=20, message="the fib server stopped with its lab")
