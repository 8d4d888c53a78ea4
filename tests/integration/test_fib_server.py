"""The fib server and the lab's RPC client on the real broker, each against plain tutorial-style pika code.

The client side runs here with real threads (no gevent patching); the app runs it under gevent (test_rpc_api).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pika
import pytest

from rabbit.correlation import DUPLICATE, LATE
from rabbit.rpc import RpcClient, RpcServerError, RpcTimeout
from tests.conftest import ROOT, wait_until
from tests.integration.helpers import ServerThreads, serve_until_stopped

pytestmark = pytest.mark.broker


class FibProcess:
    def __init__(self, broker_url: str, queue: str, tmp: Path, sid: str, *extra: str) -> None:
        self.status_file = tmp / f"{sid}.json"
        self.log_file = tmp / f"{sid}.log"
        args = [sys.executable, "-m", "rabbit.fib_server", "--amqp-url", broker_url, "--queue", queue]
        args += ["--server-id", sid, "--status-file", str(self.status_file), *extra]
        with self.log_file.open("wb") as out:
            self.process = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: self.stats().get("state") == "serving", message=f"{sid} serving")

    def stats(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self, kill: bool = False) -> int:
        if self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
        return self.process.wait(15)


@pytest.fixture
def fib_servers(broker_url, tmp_path, amqp, unique):
    queue = unique("rpc")
    amqp.queues.append(queue)
    started: list[FibProcess] = []

    def start(sid: str = "s1", *extra: str) -> FibProcess:
        server = FibProcess(broker_url, queue, tmp_path, sid, *extra)
        started.append(server)
        return server

    start.queue = queue
    yield start
    for server in started:
        server.stop(kill=True)


@pytest.fixture
def client(broker_url):
    events: list[tuple[str, dict]] = []
    rpc = RpcClient(broker_url, on_event=lambda name, payload: events.append((name, payload)), name="test-rpc")
    rpc.events = events
    rpc.start()
    assert rpc.wait_ready(10)
    yield rpc
    rpc.stop()


class TutorialClient:
    """The RPC tutorial's client, as written there (one exclusive callback queue, a busy wait)."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.callback_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.basic_consume(self.callback_queue, self.on_response, auto_ack=True)
        self.response = None
        self.props = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response, self.props = body, props

    def call(self, queue: str, body: bytes) -> tuple[bytes, pika.BasicProperties]:
        self.response = None
        self.corr_id = str(uuid.uuid4())
        props = pika.BasicProperties(reply_to=self.callback_queue, correlation_id=self.corr_id)
        self.channel.basic_publish("", queue, body, props)
        deadline = time.monotonic() + 10
        while self.response is None and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.1)
        assert self.response is not None, "no reply"
        return self.response, self.props


def run_tutorial_server(url: str, queue: str, ready: threading.Event, stop: threading.Event, delay: float = 0.0):
    """The tutorial's server (with the tutorial's recursive fib for small n), on its own connection."""

    def slow_fib(n):
        return n if n < 2 else slow_fib(n - 1) + slow_fib(n - 2)

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue)

    def on_request(ch, method, props, body):
        if delay:
            time.sleep(delay)
        reply = pika.BasicProperties(correlation_id=props.correlation_id)
        ch.basic_publish("", props.reply_to, str(slow_fib(int(body))).encode(), reply)
        ch.basic_ack(method.delivery_tag)

    serve_until_stopped(connection, channel, queue, on_request, ready, stop)


@pytest.fixture
def tutorial_server(broker_url, amqp, unique):
    servers = ServerThreads()

    def start(delay: float = 0.0) -> str:
        queue = unique(f"tut{len(servers)}")
        amqp.queues.append(queue)
        servers.start(run_tutorial_server, broker_url, queue, delay)
        return queue

    yield start
    servers.stop()


def queue_state(amqp, queue: str) -> tuple[int, int]:
    frame = amqp.fresh_channel().queue_declare(queue, passive=True)
    return frame.method.message_count, frame.method.consumer_count


# ----------------------------------------------------------------------------- the server, tutorial clients
def test_tutorial_client_gets_exact_answers_from_the_lab_server(fib_servers, broker_url):
    server = fib_servers("s1")
    tutorial = TutorialClient(broker_url)
    try:
        for n, expected in [(0, b"0"), (1, b"1"), (2, b"1"), (10, b"55"), (30, b"832040")]:
            body, props = tutorial.call(fib_servers.queue, str(n).encode())
            assert body == expected
            assert props.headers["x-rpc-server"] == "s1" and "error" not in props.headers
        big, _ = tutorial.call(fib_servers.queue, b"100000")
        assert len(big) == 20899 and big.startswith(b"2597406934722172")
    finally:
        tutorial.connection.close()
    wait_until(lambda: server.stats().get("handled") == 6, message="6 handled")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"abc", "not an integer"),
        (b"-3", "n must be >= 0"),
        (b"100001", "n must be <= 100000"),
        (b"", "empty request"),
        (b"\x00\xff\xfe\x80garbage", "not text"),
        (b"7" * 2_000_000, "too large"),
    ],
)
def test_bad_input_gets_an_error_reply_is_acked_and_the_server_survives(fib_servers, broker_url, amqp, body, reason):
    server = fib_servers("s1")
    tutorial = TutorialClient(broker_url)
    try:
        reply, props = tutorial.call(fib_servers.queue, body)
        assert reason in props.headers["error"]
        assert reply.startswith(b"error: ")
        good, _ = tutorial.call(fib_servers.queue, b"12")
        assert good == b"144"
    finally:
        tutorial.connection.close()
    assert server.process.poll() is None
    wait_until(lambda: queue_state(amqp, fib_servers.queue) == (0, 1), message="nothing left unacked")
    wait_until(lambda: server.stats().get("errors") == 1 and server.stats().get("handled") == 1, message="stats")


def test_a_request_without_reply_to_is_acked_and_logged(fib_servers, amqp):
    server = fib_servers("s1")
    amqp.fresh_channel().basic_publish("", fib_servers.queue, b"9", pika.BasicProperties(correlation_id="lonely"))
    wait_until(lambda: server.stats().get("no_reply_to") == 1, message="counted")
    wait_until(lambda: queue_state(amqp, fib_servers.queue) == (0, 1), message="acked")
    wait_until(lambda: "without reply_to" in server.log() and "lonely" in server.log(), message="logged")


def test_a_graceful_stop_answers_the_request_in_hand(fib_servers, client):
    server = fib_servers("s1", "--work-ms", "800")
    results = []
    caller = threading.Thread(target=lambda: results.append(client.call(20, queue=fib_servers.queue, timeout_s=10)))
    caller.start()
    wait_until(lambda: server.stats().get("in_flight") == 1, message="request in hand")
    server.process.terminate()
    caller.join(15)
    assert results and results[0]["result"] == "6765" and results[0]["server"] == "s1"
    assert server.process.wait(10) == 0
    assert server.stats()["state"] == "stopped"


def test_killing_a_server_mid_request_redelivers_to_another(fib_servers, client):
    slow = fib_servers("slow", "--work-ms", "5000")
    results = []
    caller = threading.Thread(target=lambda: results.append(client.call(25, queue=fib_servers.queue, timeout_s=20)))
    caller.start()
    wait_until(lambda: slow.stats().get("in_flight") == 1, message="slow server holds the request")
    spare = fib_servers("spare")
    slow.stop(kill=True)
    caller.join(20)
    assert results and results[0]["result"] == "75025" and results[0]["server"] == "spare"
    wait_until(lambda: spare.stats().get("redelivered") == 1, message="the spare saw a redelivery")


def test_a_server_killed_after_replying_but_before_acking_causes_a_duplicate_orphan(fib_servers, client):
    first = fib_servers("first", "--ack-delay-ms", "30000")
    result = client.call(11, queue=fib_servers.queue, timeout_s=10)
    assert result["result"] == "89" and result["server"] == "first"
    wait_until(lambda: first.stats().get("in_flight") == 1, message="replied but not acked")
    second = fib_servers("second")
    first.stop(kill=True)
    orphans = lambda: [p for name, p in client.events if name == "rpc_orphan"]  # noqa: E731
    wait_until(orphans, message="a duplicate reply")
    [orphan] = orphans()
    assert orphan["reason"] == DUPLICATE and orphan["server"] == "second"
    assert orphan["correlation_id"] == result["correlation_id"] and orphan["body"] == "89"
    wait_until(lambda: second.stats().get("redelivered") == 1, message="the second server saw a redelivery")
    assert client.orphans == 1


# ----------------------------------------------------------------------------- the lab client, tutorial server
@pytest.mark.parametrize("reply_mode", ["callback_queue", "direct_reply_to"])
def test_lab_client_gets_answers_from_a_tutorial_server(tutorial_server, client, reply_mode):
    queue = tutorial_server()
    for n, expected in [(0, "0"), (7, "13"), (20, "6765")]:
        result = client.call(n, queue=queue, reply_mode=reply_mode)
        assert result["result"] == expected and result["n"] == n
        assert result["reply_mode"] == reply_mode and result["server"] is None
        assert result["latency_ms"] > 0
    names = [name for name, _ in client.events]
    assert names.count("rpc_request") == 3 and names.count("rpc_reply") == 3


def test_many_calls_in_flight_are_each_matched_to_their_reply(fib_servers, client):
    fib_servers("s1", "--prefetch", "50")
    fib_servers("s2", "--prefetch", "50")
    ns = list(range(0, 300))
    results: dict[int, str] = {}
    errors = []

    def worker(chunk):
        for n in chunk:
            try:
                results[n] = client.call(n, queue=fib_servers.queue, check_consumers=False)["result"]
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(ns[i::12],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    a, b = 0, 1
    for n in ns:
        assert results[n] == str(a), n
        a, b = b, a + b


def test_burst_summary_counts_every_call(fib_servers, client):
    fib_servers("s1", "--prefetch", "20")
    progress = []
    summary = client.burst(
        [1, 2, 3], calls=600, concurrency=32, queue=fib_servers.queue, reply_mode="direct_reply_to",
        on_progress=progress.append,
    )  # fmt: skip
    assert summary["calls"] == 600 and summary["ok"] == 600
    assert summary["errors"] == summary["timeouts"] == 0
    assert 0 < summary["p50_ms"] <= summary["p90_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert summary["calls_per_s"] > 0 and summary["servers"] == {"s1": 600}
    assert progress and progress[-1]["done"] == 600
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)


def test_burst_counts_server_errors(fib_servers, client):
    fib_servers("s1", "--max-n", "10")
    summary = client.burst([5, 50], calls=10, concurrency=4, queue=fib_servers.queue)
    assert summary["ok"] == 5 and summary["errors"] == 5 and "n must be <= 10" in summary["first_error"]


# ----------------------------------------------------------------------------- errors and timeouts
def test_server_error_is_raised_with_the_servers_message(fib_servers, client):
    fib_servers("s1")
    with pytest.raises(RpcServerError) as caught:
        client.call(body=b"twelve", queue=fib_servers.queue)
    assert "not an integer: 'twelve'" in caught.value.message
    assert caught.value.to_dict()["server"] == "s1"


def test_no_server_is_said_at_once_with_the_consumer_count(client, amqp, unique):
    empty = unique("empty")
    amqp.fresh_channel().queue_declare(empty)
    amqp.queues.append(empty)
    with pytest.raises(RpcTimeout) as caught:
        client.call(5, queue=empty, timeout_s=30)
    details = caught.value.to_dict()
    assert details["consumers"] == 0 and details["queue_exists"] is True and details["waited_ms"] == 0
    assert "no server is consuming" in caught.value.message
    assert queue_state(amqp, empty) == (0, 0)  # nothing was sent
    with pytest.raises(RpcTimeout, match="does not exist"):
        client.call(5, queue=unique("missing"), timeout_s=30)
    assert client.consumer_count(empty) == 0  # the probe channel came back after the 404


def test_a_slow_reply_times_out_and_then_arrives_as_a_late_orphan(tutorial_server, client):
    queue = tutorial_server(delay=1.0)
    with pytest.raises(RpcTimeout) as caught:
        client.call(6, queue=queue, timeout_s=0.3)
    details = caught.value.to_dict()
    assert details["consumers"] == 1 and "no reply within 0.3 s" in caught.value.message
    wait_until(lambda: any(name == "rpc_orphan" for name, _ in client.events), message="late reply")
    orphan = next(p for name, p in client.events if name == "rpc_orphan")
    assert orphan["reason"] == LATE and orphan["correlation_id"] == details["correlation_id"] and orphan["body"] == "8"
    timeouts = [p for name, p in client.events if name == "rpc_timeout"]
    assert len(timeouts) == 1 and timeouts[0]["consumers"] == 1
    assert client.status["pending"] == 0


# ----------------------------------------------------------------------------- no orphans
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-m", "rabbit.fib_server", "--amqp-url", sys.argv[1], "--queue", sys.argv[2],
                          "--status-file", sys.argv[3], "--parent-pid", str(__import__("os").getpid())],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
sys.stdin.read()  # live until the test closes our stdin
"""


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("broker", ["reachable", "unreachable"])
def test_a_server_stops_when_the_lab_that_started_it_is_gone(broker_url, tmp_path, amqp, unique, broker):
    from rabbit.localnode import free_port_block

    queue = unique("orphan")
    amqp.queues.append(queue)
    url = broker_url if broker == "reachable" else f"amqp://guest:guest@127.0.0.1:{free_port_block(59900, 1)}/%2F"
    status = tmp_path / "status.json"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, url, queue, str(status)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    child = int(parent.stdout.readline())
    try:
        if broker == "reachable":
            wait_until(
                lambda: json.loads(status.read_text() or "{}").get("state") == "serving" if status.exists() else 0
            )
        else:
            wait_until(lambda: status.exists() and json.loads(status.read_text()).get("state") == "reconnecting")
        assert pid_alive(child)
        parent.stdin.close()
        parent.wait(10)
        wait_until(lambda: not pid_alive(child), timeout=15, message="the orphaned server to stop")
    finally:
        if pid_alive(child):
            os.kill(child, 9)


# ---------------------------------------------------------------------- names the broker rewrites (issue 15.1)
def test_the_rpc_client_refuses_a_bad_queue_name_before_pika(client):
    from rabbit.errors import InvalidInput

    for bad in ("q\r", "a\nb", "兔" * 86):
        with pytest.raises(InvalidInput):
            client.call(5, queue=bad)
        with pytest.raises(InvalidInput):
            client.burst([5], queue=bad)
        with pytest.raises(InvalidInput):
            client.consumer_count(bad)
    assert client.status["state"] == "connected" and client.status["stuck"] is False


def test_a_queue_check_the_broker_never_answers_does_not_wedge_later_calls(broker_url, amqp, unique):
    """Below the validation: a passive declare of "q\\r" is answered for "q", pika waits for ever and would queue
    every later check behind it. The client reports stuck, fails that one check after probe_timeout, replaces the
    check channel, and the next call answers at once."""
    from rabbit.connection import stuck_links

    base = unique("rpc-wedge")
    amqp.channel.queue_declare(base)  # the stripped name exists: the broker answers DeclareOk("<base>")
    amqp.queues.append(base)
    rpc = RpcClient(broker_url, name="test-rpc-wedge", probe_timeout=2.0, stuck_after=0.5).start()
    try:
        assert rpc.wait_ready(10)
        answers: list[tuple] = []
        done = threading.Event()

        def on_count(count, error):
            answers.append((count, error))
            done.set()

        rpc._hand_over(lambda: rpc._probe(f"{base}\r", on_count))  # what an unchecked name used to do
        wait_until(lambda: rpc.status["stuck"], timeout=5, message="the client reported stuck")
        assert any(s["name"] == "test-rpc-wedge" for s in stuck_links())
        assert done.wait(5)
        count, error = answers[0]
        assert count is None and "did not answer the check" in error
        started = time.monotonic()
        assert rpc.consumer_count(base) == 0
        with pytest.raises(RpcTimeout):  # no server: answered at once, not after a wait behind the stuck check
            rpc.call(3, queue=base, timeout_s=1)
        assert time.monotonic() - started < 1.0
        status = rpc.status
        assert status["stuck"] is False and status["probe_recoveries"] == 1
        assert status["state"] == "connected" and status["reconnects"] == 0
    finally:
        rpc.stop()


def test_a_fib_server_whose_queue_declare_is_never_answered_ends_in_error(broker_url, amqp, tmp_path, unique):
    """Below the validation (the class directly): "q\\r" is declared as "q", the server would sit in "starting"
    for ever; it gives up after SETUP_TIMEOUT_S with the reason."""
    from rabbit import fib_server

    base = unique("fib-wedge")
    amqp.queues.append(base)
    server = fib_server.FibServer(broker_url, queue=f"{base}\r", status_file=tmp_path / "s.json", print_stats=False)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(server.run()))
    started = time.monotonic()
    runner.start()
    runner.join(fib_server.SETUP_TIMEOUT_S + 10)
    assert result == [1], "the server should have ended with an error"
    assert time.monotonic() - started < fib_server.SETUP_TIMEOUT_S + 5
    assert server.stats["state"] == "error"
    assert "did not answer the declare" in server.stats["error"]
    assert json.loads((tmp_path / "s.json").read_text())["state"] == "error"


def test_the_fib_server_command_refuses_a_bad_queue_name(broker_url):
    done = subprocess.run(
        [sys.executable, "-m", "rabbit.fib_server", "--amqp-url", broker_url, "--queue", "a\nb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "control character" in done.stderr


def test_a_failing_job_in_the_rpc_client_does_not_reconnect_it(client, fib_servers):
    """A job that raises inside the owner used to end the ioloop: a reconnect that failed every call in flight."""
    fib_servers()
    client._hand_over(lambda: 1 / 0)
    assert client.call(10, queue=fib_servers.queue)["result"] == "55"
    assert client.status["reconnects"] == 0 and client.status["state"] == "connected"


def test_a_check_channel_that_never_reopens_keeps_the_client_stuck_then_reconnects_it(broker_url, amqp, unique):
    """After a stuck check, the client stays "stuck" until its replacement channel opens; if that never opens
    either (here: its open is never sent), the connection itself is shut and made anew, and calls work again."""
    base = unique("rpc-reopen")
    amqp.channel.queue_declare(base)
    amqp.queues.append(base)
    rpc = RpcClient(broker_url, name="test-rpc-reopen", probe_timeout=1.5, stuck_after=0.3).start()
    try:
        assert rpc.wait_ready(10)
        rpc._checks._reopen = lambda: None  # the replacement channel never comes
        done = threading.Event()
        rpc._hand_over(lambda: rpc._probe(f"{base}\r", lambda _count, _error: done.set()))
        assert done.wait(5)  # the stuck check failed after probe_timeout
        assert rpc.status["stuck"] is True  # but the client is still stuck: no check channel
        wait_until(lambda: rpc.status["reconnects"] >= 1, timeout=10, message="the client reconnected")
        wait_until(lambda: rpc.status["state"] == "connected", timeout=10, message="the client connected again")
        assert rpc.status["stuck"] is False
        del rpc._checks._reopen  # the new connection opens its check channel as always
        wait_until(lambda: rpc._checks.channel is not None, timeout=5, message="a check channel")
        started = time.monotonic()
        assert rpc.consumer_count(base) == 0
        assert time.monotonic() - started < 1.0
    finally:
        rpc.stop()
