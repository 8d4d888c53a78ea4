"""Start the lab as a child process (``python app.py``) and talk to it over HTTP: for tests, benchmarks and
scripts that need a real server (its own gevent patching, its own sockets), not an app object in their process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from rabbit.localnode import free_port_block

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_START_PORT = 47000  # the first port tried; the first free one from here on is used
START_TIMEOUT_S = 20.0


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
        caller that compares the link's status before and after would see that first connect as a drop.
        Raises :class:`TimeoutError` when it is not up within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.get("/api/health").json()["broker"]["connected"]:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {timeout:g}s waiting for the lab's broker link to connect ({self.log_path})"
                )
            time.sleep(0.05)
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
    amqp_url: str,
    log_path: Path,
    management_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    *,
    start_port: int = DEFAULT_START_PORT,
) -> LabServer:
    """Start ``python app.py`` on the first free port from ``start_port`` against ``amqp_url`` and wait for it to
    answer (its output goes to ``log_path``); raises :class:`RuntimeError` if it exits or does not answer."""
    port = free_port_block(start_port, size=1)
    args = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--amqp-url", amqp_url]
    if management_url:
        args += ["--management-url", management_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    out = log_path.open("wb")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    server = LabServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
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
    raise RuntimeError(f"lab server did not answer within {START_TIMEOUT_S:g}s:\n{server.log_text()}")
