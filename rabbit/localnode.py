"""A private RabbitMQ node: Debian's ``rabbitmq-server`` with its own name, ports, config and data folder.

Used by the run command when no broker answers, and by tests that must stop or restart a broker (never the
shared one). The node gets a config file of its own because a machine-wide ``rabbitmq.conf`` may pin
``listeners.tcp.*`` to 5672, which beats ``RABBITMQ_NODE_PORT``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

# rabbitmqctl takes 35672-35682 for its own link to a node: keep private nodes well clear of them.
DEFAULT_PORT = 45672
SERVER_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)
CTL_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmqctl",)


class NodeError(RuntimeError):
    """The private node could not be started or stopped."""


def find_executable(candidates: tuple[str, ...], name: str) -> str | None:
    """Debian's unwrapped script first (its wrapper in /usr/sbin switches user), else ``name`` on PATH."""
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (someone else's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port_block(start: int, size: int = 3, end: int = 60000) -> int:
    """The first port from ``start`` such that ``size`` consecutive ports are free (skipping 35672-35682)."""
    port = start
    while port + size < end:
        block = range(port, port + size)
        if not any(35672 <= p <= 35682 for p in block) and not any(port_open(p) for p in block):
            with contextlib.ExitStack() as stack:
                try:
                    for p in block:
                        s = stack.enter_context(socket.socket())
                        s.bind(("127.0.0.1", p))
                    return port
                except OSError:
                    pass
        port += size
    raise NodeError(f"no {size} free consecutive ports between {start} and {end}")


class PrivateNode:
    """A RabbitMQ node of our own on 127.0.0.1; its data survives :meth:`restart` (durable queues stay)."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        *,
        amqp_port: int = DEFAULT_PORT,
        dist_port: int | None = None,
        management_port: int | None = None,
        node_name: str | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.amqp_port = amqp_port
        self.dist_port = dist_port or amqp_port + 1
        self.management_port = management_port
        self.node_name = node_name or f"rabbitlens{amqp_port}@localhost"
        self._process: subprocess.Popen | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def management_url(self) -> str | None:
        if self.management_port is None:
            return None
        return f"http://guest:guest@127.0.0.1:{self.management_port}"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.out"

    def environment(self) -> dict[str, str]:
        """The environment that points ``rabbitmq-server`` and ``rabbitmqctl`` at this node."""
        env = dict(os.environ)
        env.update(
            HOME=str(self.base_dir),  # its own Erlang cookie
            RABBITMQ_NODENAME=self.node_name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(self.base_dir / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base_dir / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base_dir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.base_dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base_dir / "log"),
            RABBITMQ_PID_FILE=str(self.base_dir / "node.pid"),
        )
        return env

    def write_config(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
            "loopback_users = none",
            "log.console = false",
        ]
        plugins: list[str] = []
        if self.management_port is not None:
            lines += [f"management.tcp.port = {self.management_port}", "management.tcp.ip = 127.0.0.1"]
            plugins.append("rabbitmq_management")
        (self.base_dir / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (self.base_dir / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 90.0) -> PrivateNode:
        """Start the node and wait until AMQP (and management, if asked for) answer."""
        if self.is_running():
            return self
        server = find_executable(SERVER_CANDIDATES, "rabbitmq-server")
        if server is None:
            raise NodeError("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")
        if port_open(self.amqp_port):
            raise NodeError(f"port {self.amqp_port} is already taken")
        self.write_config()
        out = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [server],
            env=self.environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.base_dir,
        )
        out.close()
        deadline = time.monotonic() + timeout
        ports = [self.amqp_port] + ([self.management_port] if self.management_port else [])
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise NodeError(f"rabbitmq-server exited with {self._process.returncode}; see {self.log_file}")
            if all(port_open(p) for p in ports):
                log.info("private RabbitMQ node %s up on %s", self.node_name, self.amqp_port)
                return self
            time.sleep(0.25)
        self.stop()
        raise NodeError(f"private node did not answer on {ports} within {timeout:g}s; see {self.log_file}")

    def stop(self, timeout: float = 45.0) -> None:
        """Stop the node gracefully (SIGTERM), killing it if it does not go within ``timeout``."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill the node at once, as a crash would."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 90.0) -> None:
        self.stop()
        self.start(timeout)

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run ``rabbitmqctl -n NODE ARGS`` against this node."""
        ctl = find_executable(CTL_CANDIDATES, "rabbitmqctl")
        if ctl is None:
            raise NodeError("rabbitmqctl is not installed")
        return subprocess.run(
            [ctl, "-n", self.node_name, *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.base_dir,
        )

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # The Erlang VM may outlive the wrapper script for a moment: wait for the port to close.
        deadline = time.monotonic() + timeout
        while port_open(self.amqp_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        self._process = None

    def __enter__(self) -> PrivateNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_private_node(base: Path, start_port: int, management: bool) -> PrivateNode:
    """A private node started in ``base`` on the first free block of ports from ``start_port`` (AMQP, its
    distribution port, and the management API two above AMQP when ``management``)."""
    port = free_port_block(start_port, size=4)
    node = PrivateNode(base, amqp_port=port, management_port=port + 2 if management else None)
    return node.start()
