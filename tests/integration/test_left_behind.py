"""What a lab killed with ``kill -9`` leaves behind is cleaned up by the next lab: the broker's trace switched
off (only a trace the lab itself left on, as its marker says) and the fib servers' work folder removed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.private_node]


def _tracing(node) -> bool:
    return requests.get(node.management_url + "/api/vhosts/%2F", timeout=10).json()["tracing"]


def _set_tracing(node, enabled: bool) -> None:
    requests.put(node.management_url + "/api/vhosts/%2F", json={"tracing": enabled}, timeout=10).raise_for_status()


def _status_file_of(pid: int) -> Path:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return Path(args[args.index(b"--status-file") + 1].decode())


def test_the_next_lab_switches_off_the_trace_and_removes_the_folders_a_killed_lab_left(
    own_managed_node, lab_factory, unique
):
    node = own_managed_node
    first = lab_factory(node.amqp_url, node.management_url).wait_broker_connected()
    assert first.post("/api/trace", {"enabled": True}).json()["enabled"] is True
    started = first.post("/api/rpc/servers", {"count": 1, "queue": unique("left")})
    assert started.status_code == 201, started.text
    workdir = _status_file_of(started.json()["servers"][0]["pid"]).parent
    assert workdir.is_dir()
    assert _tracing(node) is True

    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    time.sleep(0.5)
    assert _tracing(node) is True, "kill -9 leaves the trace on (the lab had no chance to switch it off)"
    assert workdir.is_dir()

    second = lab_factory(node.amqp_url, node.management_url).wait_broker_connected()
    wait_until(lambda: not workdir.exists(), timeout=10, message=f"the stale folder {workdir} to go")
    wait_until(lambda: _tracing(node) is False, timeout=15, message="the trace the killed lab left on to go off")
    assert "left on" in second.log_text()

    # A trace someone else switched on (no marker of a lab that is gone) is left alone.
    _set_tracing(node, True)
    try:
        third = lab_factory(node.amqp_url, node.management_url).wait_broker_connected()
        time.sleep(2)
        assert _tracing(node) is True
        assert third.get("/api/trace").json()["enabled"] is False
    finally:
        _set_tracing(node, False)


def test_a_running_labs_folder_and_foreign_folders_are_left_alone(tmp_path):
    import subprocess
    import sys

    from rabbit.rpc_servers import OWNER_FILE, WORKDIR_PREFIX, remove_stale_workdirs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"{WORKDIR_PREFIX}dead"
    alive = tmp_path / f"{WORKDIR_PREFIX}alive"
    unmarked = tmp_path / f"{WORKDIR_PREFIX}unmarked"
    other = tmp_path / "someone-elses"
    for folder in (dead, alive, unmarked, other):
        folder.mkdir()
        (folder / "s1.log").write_text("x")
    (dead / OWNER_FILE).write_text(f'{{"pid": {gone.pid}}}')
    (alive / OWNER_FILE).write_text(f'{{"pid": {os.getppid()}}}')
    (other / OWNER_FILE).write_text(f'{{"pid": {gone.pid}}}')
    assert remove_stale_workdirs(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and unmarked.exists() and other.exists()
