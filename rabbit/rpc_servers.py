"""Real fib server processes started by the lab: start, list (with their live stats), stop, kill.

Each server is ``python -m rabbit.fib_server`` with ``--server-id sN`` and a ``--status-file`` in a folder of
this pool; its stdout/stderr go to a log file next to it. The broker URL (with its password) goes to the server
in its environment, which only its owner can read, never on its command line (``ps`` shows that to everyone).
The pool's folder holds an ``owner.json`` marker (the lab's pid): a new pool removes the folders of pools whose
lab died without cleaning up (``kill -9``). Stopping is graceful (SIGTERM: the server stops
consuming, finishes and acks what it holds, closes); killing is SIGKILL mid-request, so the broker redelivers
what the server held unacked.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rabbit.errors import LabError
from rabbit.localnode import pid_alive
from rabbit.validation import check_name

ROOT = Path(__file__).resolve().parent.parent
MAX_SERVERS = 8
KEEP_ENDED = 32  # stopped and killed servers kept listed (the oldest go first)
WORKDIR_PREFIX = "rabbitlens-fib-"
OWNER_FILE = "owner.json"


@dataclass
class ServerProcess:
    id: str
    process: subprocess.Popen
    status_file: Path
    log_file: Path
    queue: str
    prefetch: int
    work_ms: float
    max_n: int
    ack_delay_ms: float
    started: float
    queue_durable: bool = True
    queue_type: str = "auto"
    # Set once the lab stopped (SIGTERM) or killed (SIGKILL) it: the server stays listed, greyed, until cleared.
    ended: str | None = None
    ended_at: float | None = None
    final: dict[str, Any] | None = None  # its last counters, kept when the lab stopped or killed it

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stats(self) -> dict[str, Any]:
        if self.final is not None:
            return dict(self.final)
        try:
            data = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            data = {}
        code = self.process.poll()
        return {
            "id": self.id,
            "pid": self.process.pid,
            "queue": self.queue,
            "prefetch": self.prefetch,
            "work_ms": self.work_ms,
            "max_n": self.max_n,
            "ack_delay_ms": self.ack_delay_ms,
            "queue_durable": self.queue_durable,
            "queue_type": self.queue_type,
            "queue_declaration": data.get("queue_declaration"),
            "state": self.ended or (data.get("state", "starting") if code is None else "exited"),
            "ended_at": self.ended_at,
            "exit_code": code,
            "handled": data.get("handled", 0),
            "errors": data.get("errors", 0),
            "in_flight": data.get("in_flight", 0),
            "no_reply_to": data.get("no_reply_to", 0),
            "redelivered": data.get("redelivered", 0),
            "error": data.get("error"),
            "started": self.started,
        }

    def log_tail(self, limit: int = 4000) -> str:
        try:
            with self.log_file.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class ServerPool:
    """The fib servers this lab started. Thread-safe."""

    def __init__(
        self,
        amqp_url: str,
        *,
        workdir: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        max_servers: int = MAX_SERVERS,
        keep_ended: int = KEEP_ENDED,
    ) -> None:
        self.amqp_url = amqp_url
        self.max_servers = max_servers
        self.keep_ended = keep_ended
        self.python = python
        self._own_dir = workdir is None
        if self._own_dir:
            self.removed_stale = remove_stale_workdirs(Path(tempfile.gettempdir()))
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._own_dir:
            (self.workdir / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
        self._on_event = on_event
        self._servers: dict[str, ServerProcess] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(
        self,
        count: int = 1,
        *,
        queue: str = "rpc_queue",
        prefetch: int = 1,
        work_ms: float = 0.0,
        max_n: int = 100_000,
        ack_delay_ms: float = 0.0,
        wait_s: float = 10.0,
        queue_durable: bool = True,
        queue_type: str = "auto",
    ) -> list[dict[str, Any]]:
        """Start ``count`` servers and wait until each consumes (or ``wait_s`` passes); their stats.

        ``queue_durable``/``queue_type`` say how a server declares ``queue`` if it does not exist (an existing
        queue is used as it is): durable, quorum where the broker has them, by default."""
        if queue_type == "quorum" and not queue_durable:
            raise LabError(
                "a quorum queue is always durable: for a transient queue use queue_type classic (or auto)",
                code="INVALID",
            )
        queue = check_name(queue, "queue")
        with self._lock:
            alive = sum(1 for s in self._servers.values() if s.process.poll() is None)
            if alive + count > self.max_servers:  # checked and spawned under one lock: concurrent starts cannot race
                raise LabError(
                    f"at most {self.max_servers} servers at once ({alive} running; RABBITLENS_RPC_MAX_SERVERS)",
                    code="INVALID",
                    details={"limit": self.max_servers},
                )
            started = [
                self._spawn(queue, prefetch, work_ms, max_n, ack_delay_ms, queue_durable, queue_type)
                for _ in range(count)
            ]
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            states = [s.stats()["state"] for s in started]
            if all(state in ("serving", "exited", "error") for state in states):
                break
            time.sleep(0.05)
        result = [s.stats() for s in started]
        for server, stats in zip(started, result, strict=True):
            if stats["state"] == "exited":
                stats["log"] = server.log_tail(1000)
        self._emit()
        return result

    def _spawn(
        self,
        queue: str,
        prefetch: int,
        work_ms: float,
        max_n: int,
        ack_delay_ms: float,
        queue_durable: bool = True,
        queue_type: str = "auto",
    ) -> ServerProcess:
        sid = f"s{next(self._ids)}"
        status_file = self.workdir / f"{sid}.json"
        log_file = self.workdir / f"{sid}.log"
        args = [
            self.python,
            "-m",
            "rabbit.fib_server",
            "--queue",
            queue,
            "--prefetch",
            str(prefetch),
            "--work-ms",
            str(work_ms),
            "--max-n",
            str(max_n),
            "--server-id",
            sid,
            "--status-file",
            str(status_file),
            "--ack-delay-ms",
            str(ack_delay_ms),
            "--parent-pid",
            str(os.getpid()),
            "--queue-type",
            queue_type,
            "--queue-durable" if queue_durable else "--no-queue-durable",
        ]
        # The URL (and its password) in the environment: /proc/<pid>/environ is the owner's alone, the command
        # line is everyone's.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), "RABBITLENS_AMQP_URL": self.amqp_url}
        env.pop("AMQP_URL", None)
        with log_file.open("wb") as out:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        server = ServerProcess(
            sid,
            process,
            status_file,
            log_file,
            queue,
            prefetch,
            work_ms,
            max_n,
            ack_delay_ms,
            time.time(),
            queue_durable,
            queue_type,
        )
        self._servers[sid] = server
        return server

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            servers = list(self._servers.values())
        return [s.stats() for s in servers]

    def get(self, sid: str) -> ServerProcess:
        with self._lock:
            server = self._servers.get(sid)
        if server is None:
            raise LabError(f"no fib server {sid!r} (see GET /api/rpc/servers)", code="NOT_FOUND")
        return server

    def stop(self, sid: str, *, kill: bool = False, timeout: float = 12.0) -> dict[str, Any]:
        """Stop one server gracefully (SIGTERM), or kill it at once (SIGKILL); its last stats. It stays listed
        (state ``stopped`` / ``killed``, its final counts) until :meth:`clear`; stopping it again answers the same."""
        server = self.get(sid)
        if server.final is not None:
            return {**server.stats(), "killed": server.ended == "killed"}
        was_running = server.process.poll() is None
        if was_running:
            if kill:
                server.process.kill()
            else:
                server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(5)
        if was_running:  # one that exited by itself stays "exited"
            server.ended = "killed" if kill else "stopped"
        server.ended_at = time.time()
        server.final = server.stats()
        with self._lock:  # the oldest ended ones go past keep_ended (RABBITLENS_RPC_KEPT_SERVERS)
            ended = sorted((s for s in self._servers.values() if s.final is not None), key=lambda s: s.ended_at or 0)
            for old in ended[: max(0, len(ended) - self.keep_ended)]:
                self._forget(old.id)
        self._emit()
        return {**server.stats(), "killed": kill}

    def _forget(self, sid: str) -> None:
        """Drop a server that no longer runs, and its files (under the lock)."""
        server = self._servers.pop(sid)
        for path in (server.status_file, server.log_file):
            path.unlink(missing_ok=True)

    def clear(self) -> list[str]:
        """Forget the servers that no longer run (stopped, killed or exited); their ids."""
        with self._lock:
            gone = [sid for sid, server in self._servers.items() if not server.running]
            for sid in gone:
                self._forget(sid)
        self._emit()
        return gone

    def stop_all(self, *, kill: bool = False) -> None:
        with self._lock:
            ids = list(self._servers)
        for sid in ids:
            with contextlib.suppress(LabError):
                self.stop(sid, kill=kill, timeout=5.0)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _emit(self) -> None:
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event("rpc_servers", {"servers": self.list()})


def remove_stale_workdirs(parent: Path) -> list[Path]:
    """Remove the work folders of pools whose lab is gone (killed with ``kill -9``, say); the ones removed.

    Only folders this user owns, named like a pool's, whose ``owner.json`` names a pid that no longer runs: a
    folder without a marker, or of a lab still running, is left alone.
    """
    removed = []
    for folder in parent.glob(f"{WORKDIR_PREFIX}*"):
        try:
            if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            pid = json.loads((folder / OWNER_FILE).read_text()).get("pid")
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(pid, int) or pid == os.getpid() or pid_alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
