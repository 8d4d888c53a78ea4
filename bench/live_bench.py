"""Benchmark of the live path: broker -> lab server (a tap) -> Socket.IO client, side by side with raw pika.

    .venv/bin/python -m bench.live_bench [--quick] [--amqp-url URL] [--out bench/results-live.md]

It starts its own lab server (``python app.py --port ...``) against the broker, taps a fanout exchange of its own
and connects a python-socketio client as the browser. It measures, in one run:

1. latency publish -> receipt at 100 msg/s, for the Socket.IO client (through the tap) and for a raw pika
   consumer on a queue bound to the same exchange, from the same publishes (side by side);
2. the raw pika consume rate (auto-ack, draining a pre-filled queue) and the same drain through a lab consumer to
   the Socket.IO client with exact counts, as a ratio (the issue's target); then the highest paced publish rate
   whose every event reaches the client through a tap (received == published, nothing dropped from the view),
   which on 2 cores is bound by the publisher processes themselves;
3. the lab server's RSS during a flood at that rate (2 minutes; 20 s with ``--quick``) with one stalled client
   that never reads, after 10 s vs at the end.
Publishers run in processes of their own so the client's process only receives.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engineio
import pika
import requests
import socketio
import websocket

from bench.common import cpu_model, percentile

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
BODY_64 = b"x" * 64
# A ladder step's publishers "kept up" when they reached this share of the target. Below it they are saturated
# (2 cores shared with the broker, the lab and the client); a step a few percent short is noise, not a ceiling.
KEPT_UP = 0.9


# --------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    cpu = cpu_model()
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {system}"


# --------------------------------------------------------------------------- publishers (own processes)
def paced_publish(
    url: str, exchange: str, routing_key: str, rate: float, duration: float, stamp: bool, limit: int, out
) -> None:
    """Publish at ``rate``/s (0: as fast as possible) for ``duration`` s or ``limit`` messages (0: no limit);
    report (sent, elapsed)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    sent = 0
    start = time.perf_counter()
    try:
        while True:
            now = time.perf_counter()
            elapsed = now - start
            if elapsed >= duration or (limit and sent >= limit):
                break
            due = int(elapsed * rate) - sent if rate else 500
            if limit:
                due = min(due, limit - sent)
            for _ in range(max(0, due)):
                body = json.dumps({"t": time.time(), "n": sent}).encode() if stamp else BODY_64
                channel.basic_publish(exchange, routing_key, body)
                sent += 1
            if rate and due <= 0:
                time.sleep(min(0.002, 1.0 / rate))
    finally:
        elapsed = time.perf_counter() - start
        connection.close()
    out.put((sent, elapsed))


def run_publisher(
    url: str, exchange: str, routing_key: str, rate: float, duration: float, stamp: bool = False, limit: int = 0
):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    process = ctx.Process(target=paced_publish, args=(url, exchange, routing_key, rate, duration, stamp, limit, out))
    process.start()
    return process, out


PER_PUBLISHER = 4000  # msg/s one paced publisher process is asked for, at most (one pika process tops out near 10k)


def run_paced(url: str, exchange: str, rate: float, duration: float) -> tuple[int, float]:
    """Publish at ``rate`` msg/s for ``duration`` s from as many processes as it takes; (sent, elapsed)."""
    count = max(1, -(-int(rate) // PER_PUBLISHER))
    runs = [run_publisher(url, exchange, "", rate / count, duration) for _ in range(count)]
    results = [out.get(timeout=duration + 60) for _, out in runs]
    for process, _ in runs:
        process.join()
    return sum(sent for sent, _ in results), max(elapsed for _, elapsed in results)


def fill_queue(url: str, queue: str, count: int) -> float:
    """Publish ``count`` 64-byte messages into ``queue``; returns the publish rate."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    start = time.perf_counter()
    for _ in range(count):
        channel.basic_publish("", queue, BODY_64)
    channel.queue_declare(queue, passive=True)  # a round trip: everything before it has arrived
    elapsed = time.perf_counter() - start
    connection.close()
    return count / elapsed


def drain_queue(url: str, queue: str, count: int, out) -> None:
    """Raw pika, auto-ack: consume ``count`` messages and report the rate."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    got = 0
    start = 0.0

    def on_message(ch, method, properties, body) -> None:
        nonlocal got, start
        if got == 0:
            start = time.perf_counter()
        got += 1
        if got >= count:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message, auto_ack=True)
    channel.start_consuming()
    elapsed = time.perf_counter() - start
    connection.close()
    out.put((count - 1) / elapsed)


# --------------------------------------------------------------------------- the browser side
class InOrderEngineIOClient(engineio.Client):
    """Handles each message in the reading thread, like a browser's single JS thread.

    python-engineio's client starts a thread per incoming message by default: under a flood those threads pile
    up without bound, contend for the GIL, lose the order and starve the ping/pong (the client then drops the
    connection). In order, a slow client pushes back through TCP, which is what the server must cope with.
    """

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    def _engineio_client_class(self) -> type[engineio.Client]:
        return InOrderEngineIOClient


@dataclass
class BrowserClient:
    """A python-socketio client counting one tap's events (single or batched) and their latency."""

    base_url: str
    tap_id: str = ""
    received: int = 0
    dropped: int = 0
    queue: str = ""  # count `delivery` events of this queue (a lab consumer's path)
    deliveries: int = 0
    deliveries_dropped: int = 0
    first_delivery: float = 0.0
    last_delivery: float = 0.0
    latencies: list[float] = field(default_factory=list)
    measure_latency: bool = False
    last_receipt: float = 0.0
    last_receipt_mono: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # websocket-client checks UTF-8 in pure Python (one loop turn per byte) unless told not to: a browser
        # does it natively, so the stand-in skips it rather than measure that loop.
        self.sio = InOrderClient(reconnection=False, websocket_extra_options={"skip_utf8_validation": True})
        self.sio.on("tap", self._on_tap)
        self.sio.on("delivery", self._on_delivery)
        self.sio.on("batch", self._on_batch)
        self.sio.connect(self.base_url, transports=["websocket"], wait_timeout=10)

    def _count(self, events: list[dict[str, Any]]) -> None:
        now = time.time()
        with self.lock:
            for data in events:
                if data.get("tap_id") != self.tap_id:
                    continue
                self.received += 1
                self.last_receipt = now
                self.last_receipt_mono = time.monotonic()
                if self.measure_latency:
                    self.latencies.append((now - json.loads(data["body"]["text"])["t"]) * 1000)

    def _on_tap(self, data: dict[str, Any]) -> None:
        self._count([data])

    def _count_deliveries(self, events: list[dict[str, Any]]) -> None:
        now = time.perf_counter()
        mine = sum(1 for data in events if data.get("queue") == self.queue)
        if mine:
            with self.lock:
                if not self.deliveries:
                    self.first_delivery = now
                self.deliveries += mine
                self.last_delivery = now

    def _on_delivery(self, data: dict[str, Any]) -> None:
        self._count_deliveries([data])

    def _on_batch(self, batch: dict[str, Any]) -> None:
        self._count([item["data"] for item in batch["events"] if item["event"] == "tap"])
        self._count_deliveries([item["data"] for item in batch["events"] if item["event"] == "delivery"])
        with self.lock:
            self.dropped = batch["dropped"].get("tap", 0)
            self.deliveries_dropped = batch["dropped"].get("delivery", 0)

    def reset(self, measure_latency: bool = False) -> tuple[int, int]:
        with self.lock:
            base = (self.received, self.dropped)
            self.latencies = []
            self.measure_latency = measure_latency
        return base

    def close(self) -> None:
        self.sio.disconnect()


def stalled_client(base_url: str) -> websocket.WebSocket:
    """A Socket.IO client that never reads after connecting (a frozen tab)."""
    ws = websocket.create_connection(
        base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        timeout=10,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
    )
    ws.recv()
    ws.send("40")
    ws.recv()
    return ws


def raw_counting_consumer(url: str, queue: str, counter, ready) -> None:
    """Raw pika, auto-ack: count every message of ``queue`` into a shared counter until killed."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()

    def on_message(ch, method, properties, body) -> None:
        with counter.get_lock():
            counter.value += 1

    channel.basic_consume(queue, on_message, auto_ack=True)
    ready.set()
    channel.start_consuming()


def raw_latency_consumer(url: str, queue: str, count: int, out) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    latencies: list[float] = []

    def on_message(ch, method, properties, body) -> None:
        latencies.append((time.time() - json.loads(body)["t"]) * 1000)
        if len(latencies) >= count:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message, auto_ack=True)
    out.put("ready")
    channel.start_consuming()
    connection.close()
    out.put(latencies)


# --------------------------------------------------------------------------- the run
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.amqp_url
        self.token = uuid.uuid4().hex[:8]
        self.exchange = f"rl-bench-live-{self.token}"
        self.port = args.port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen | None = None
        self.results: dict[str, Any] = {}
        self.log_path = Path(f"/tmp/rabbitlens-live-bench-{self.token}.log")

    def say(self, text: str) -> None:
        print(text, flush=True)

    def start_server(self) -> None:
        cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), "--amqp-url", self.url]
        log = self.log_path.open("wb")
        self.server = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base_url + "/api/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"the lab server did not start; see {self.log_path}")

    def run(self) -> dict[str, Any]:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        channel.exchange_declare(self.exchange, "fanout")
        raw_queue = f"rl-bench-raw-{self.token}"
        self.results["load"] = {"start": os.getloadavg()}
        self.start_server()
        client = None
        try:
            answer = requests.post(self.base_url + "/api/taps", json={"exchange": self.exchange}, timeout=10)
            if answer.status_code != 201:
                raise RuntimeError(f"cannot tap {self.exchange}: {answer.status_code} {answer.text}")
            tap = answer.json()
            client = BrowserClient(self.base_url, tap_id=tap["id"])
            self.results["rabbitmq"] = requests.get(self.base_url + "/api/health", timeout=5).json()["broker"][
                "server_version"
            ]
            self.latency(channel, client)
            self.results["load"]["after_latency"] = os.getloadavg()
            self.throughput(channel, client, raw_queue)
            self.results["load"]["after_throughput"] = os.getloadavg()
            connection.close()
            self.memory(client)
            self.results["load"]["end"] = os.getloadavg()
        finally:
            if client is not None:
                client.close()
            if self.server is not None:
                self.server.terminate()
                self.server.wait(10)
            # The first connection idled through the flood (missed heartbeats): clean up on a fresh one.
            cleanup = pika.BlockingConnection(pika.URLParameters(self.url))
            channel = cleanup.channel()
            channel.queue_delete(raw_queue)
            channel.queue_delete(f"rl-bench-lat-{self.token}")
            channel.exchange_delete(self.exchange)
            cleanup.close()
        return self.results

    # 1. latency at 100 msg/s, lab and raw pika from the same publishes
    def latency(self, channel, client: BrowserClient) -> None:
        count = 300 if self.args.quick else 1000
        queue = f"rl-bench-lat-{self.token}"
        channel.queue_declare(queue, auto_delete=False)
        channel.queue_bind(queue, self.exchange)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        consumer = ctx.Process(target=raw_latency_consumer, args=(self.url, queue, count, out))
        consumer.start()
        out.get(timeout=30)
        base, _ = client.reset(measure_latency=True)
        self.say(f"latency: {count} messages at 100 msg/s ...")
        publisher, pub_out = run_publisher(self.url, self.exchange, "", 100, count, stamp=True, limit=count)
        sent, _ = pub_out.get(timeout=count / 100 + 60)
        publisher.join()
        raw = out.get(timeout=60)
        consumer.join()
        deadline = time.monotonic() + 10
        while client.received - base < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        lab = list(client.latencies)
        client.reset()
        channel.queue_delete(queue)
        self.results["latency"] = {
            "messages": sent,
            "lab_received": len(lab),
            "lab_p50": percentile(lab, 50),
            "lab_p99": percentile(lab, 99),
            "raw_received": len(raw),
            "raw_p50": percentile(raw, 50),
            "raw_p99": percentile(raw, 99),
        }
        self.say(f"  {self.results['latency']}")

    # 2. raw consume rate, then the highest rate reaching the client exactly
    def throughput(self, channel, client: BrowserClient, raw_queue: str) -> None:
        count = 100_000 if self.args.quick else 300_000
        channel.queue_declare(raw_queue)
        self.say(f"raw pika: filling a queue with {count} messages ...")
        publish_rate = fill_queue(self.url, raw_queue, count)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        drainer = ctx.Process(target=drain_queue, args=(self.url, raw_queue, count, out))
        drainer.start()
        raw_rate = out.get(timeout=300)
        drainer.join()
        self.say(f"  raw consume {raw_rate:,.0f} msg/s (publish {publish_rate:,.0f} msg/s, one process)")

        step = 2.0 if self.args.quick else 5.0
        ladder = [2000, 4000, 6000, 8000, 10000, 12500, 15000, 17500, 20000, 25000, 30000, 35000, 40000, 50000]
        steps = []
        best = 0.0
        # Raw pika side by side: the same paced publishers into an exchange of its own, a raw consumer process.
        raw_exchange = f"{self.exchange}-raw"
        channel.exchange_declare(raw_exchange, "fanout", auto_delete=True)
        channel.queue_bind(raw_queue, raw_exchange)
        counter, ready = ctx.Value("q", 0), ctx.Event()
        raw_consumer = ctx.Process(target=raw_counting_consumer, args=(self.url, raw_queue, counter, ready))
        raw_consumer.start()
        ready.wait(30)
        for rate in ladder:
            before = counter.value
            raw_sent, raw_elapsed = run_paced(self.url, raw_exchange, rate, step)
            deadline = time.monotonic() + 3.0
            while counter.value - before < raw_sent and time.monotonic() < deadline:
                time.sleep(0.02)
            raw_step = {"achieved": raw_sent / raw_elapsed, "exact": counter.value - before == raw_sent}
            base, dropped0 = client.reset()
            cpu0 = cpu_seconds(self.server.pid)
            sent, elapsed = run_paced(self.url, self.exchange, rate, step)
            achieved = sent / elapsed
            deadline = time.monotonic() + 3.0
            while client.received - base + client.dropped - dropped0 < sent and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
            received = client.received - base
            dropped = client.dropped - dropped0
            cpu = (cpu_seconds(self.server.pid) - cpu0) / elapsed
            exact = received == sent and dropped == 0
            publisher_kept_up = achieved >= KEPT_UP * rate
            steps.append(
                {
                    "target": rate,
                    "published": sent,
                    "achieved": achieved,
                    "received": received,
                    "dropped": dropped,
                    "exact": exact,
                    "server_cpu": cpu,
                    "raw_achieved": raw_step["achieved"],
                    "raw_exact": raw_step["exact"],
                }
            )
            self.say(
                f"  {rate:>6}/s: raw {raw_step['achieved']:,.0f}/s exact={raw_step['exact']}; lab published {sent} "
                f"at {achieved:,.0f}/s, received {received}, dropped {dropped}, server CPU {cpu:.0%}"
            )
            if exact:
                best = max(best, achieved)
            if not exact or not publisher_kept_up:
                break
        raw_consumer.kill()
        raw_consumer.join()
        drain = self.lab_drain(channel, client, count)
        # Let the tap's queue drain before the next phase.
        time.sleep(2.0)
        self.results["throughput"] = {
            "raw_consume": raw_rate,
            "raw_publish": publish_rate,
            "step_seconds": step,
            "steps": steps,
            "best": best,
            "ratio": best / raw_rate if raw_rate else float("nan"),
            # The last step passed but the publishers fell short: of their own (raw fell short too) or because
            # the lab path pushed back through the broker's flow control (raw reached the target).
            "limited_by_publisher": bool(steps)
            and steps[-1]["exact"]
            and steps[-1]["raw_achieved"] < KEPT_UP * steps[-1]["target"],
            "pushed_back": bool(steps)
            and steps[-1]["exact"]
            and steps[-1]["raw_achieved"] >= KEPT_UP * steps[-1]["target"],
            "drain": drain,
        }

    def lab_drain(self, channel, client: BrowserClient, count: int) -> dict[str, Any]:
        """The same drain as raw pika, through a lab consumer (auto-ack) and the hub to the client."""
        queue = f"rl-bench-drain-{self.token}"
        channel.queue_declare(queue)
        self.say(f"lab consumer: filling {queue} with {count} messages ...")
        fill_queue(self.url, queue, count)
        client.queue = queue
        before = client.deliveries_dropped
        cpu0, wall0 = cpu_seconds(self.server.pid), time.perf_counter()
        response = requests.post(self.base_url + "/api/consumers", json={"queue": queue, "ack": "auto"}, timeout=30)
        response.raise_for_status()
        consumer_id = response.json()["id"]
        deadline = time.monotonic() + 300
        while client.deliveries + client.deliveries_dropped - before < count and time.monotonic() < deadline:
            time.sleep(0.05)
        server_cpu = (cpu_seconds(self.server.pid) - cpu0) / (time.perf_counter() - wall0)
        time.sleep(0.5)
        requests.delete(f"{self.base_url}/api/consumers/{consumer_id}", timeout=30)
        channel.queue_delete(queue)
        received, dropped = client.deliveries, client.deliveries_dropped - before
        elapsed = client.last_delivery - client.first_delivery
        result = {
            "messages": count,
            "received": received,
            "dropped": dropped,
            "rate": (count - 1) / elapsed if elapsed > 0 else float("nan"),
            "exact": received == count and dropped == 0,
            "server_cpu": server_cpu,
        }
        self.say(f"  lab drain {result}")
        return result

    # 3. RSS during a long flood with a stalled client
    def memory(self, client: BrowserClient) -> None:
        duration = 20.0 if self.args.quick else 120.0
        rate = max(2000.0, self.results["throughput"]["best"])
        stalled = stalled_client(self.base_url)
        base, dropped0 = client.reset()
        samples: list[tuple[float, float]] = [(0.0, rss_mb(self.server.pid))]
        self.say(f"memory: flood at {rate:,.0f} msg/s for {duration:.0f} s with one stalled client ...")
        done: list[tuple[int, float]] = []
        flood = threading.Thread(target=lambda: done.append(run_paced(self.url, self.exchange, rate, duration)))
        flood.start()
        start = time.monotonic()
        while flood.is_alive():
            time.sleep(1.0)
            samples.append((time.monotonic() - start, rss_mb(self.server.pid)))
        sent, elapsed = done[0]
        # Wait until every event is accounted for, or nothing more arrives for 5 s (at most 120 s).
        flood_end = time.monotonic()
        deadline, last, last_change = flood_end + 120, -1, flood_end
        while client.received - base + client.dropped - dropped0 < sent and time.monotonic() < deadline:
            seen = client.received + client.dropped
            if seen != last:
                last, last_change = seen, time.monotonic()
            elif time.monotonic() - last_change > 5:
                break
            time.sleep(0.05)
        catch_up = max(0.0, client.last_receipt_mono - flood_end)
        stalled.close()
        at_10 = next(rss for t, rss in samples if t >= 10.0)
        self.results["memory"] = {
            "catch_up": catch_up,
            "client_connected": client.sio.connected,
            "rate": sent / elapsed,
            "seconds": duration,
            "published": sent,
            "received": client.received - base,
            "dropped": client.dropped - dropped0,
            "rss_start": samples[0][1],
            "rss_10s": at_10,
            "rss_end": samples[-1][1],
            "rss_max": max(rss for _, rss in samples),
        }
        self.say(f"  {self.results['memory']}")


# --------------------------------------------------------------------------- the report
def report(results: dict[str, Any], args: argparse.Namespace, command: str, started: str) -> str:
    lat, thr, mem = results["latency"], results["throughput"], results["memory"]
    drain = thr["drain"]
    lines = [
        "# Live path benchmark: broker -> lab server -> Socket.IO client, beside raw pika",
        "",
        f"- Date: {started} (UTC)",
        f"- Machine: {machine()}",
        f"- Broker: RabbitMQ {results.get('rabbitmq')}, `{args.amqp_url.split('@')[-1]}` (the shared broker)",
        f"- Command: `{command}`" + (" (quick mode)" if args.quick else ""),
        "- Path measured: a publisher process -> a fanout exchange -> the lab's tap (exclusive auto-ack queue, "
        "its own connection) -> the live hub's adaptive batcher -> one flusher greenlet -> Socket.IO over "
        "websocket -> a python-socketio client (the browser's stand-in, one process). The lab server is "
        "`python app.py` (gevent, gevent-websocket) started by the benchmark.",
        "- These machines are shared and their speed varies from run to run: absolute figures are noisy; the "
        "side-by-side ratios come from the same minutes. Load average (1 min) on 2 cores, the benchmark's own "
        "processes included: "
        + ", ".join(f"{k.replace('_', ' ')} {v[0]:.1f}" for k, v in results["load"].items())
        + ".",
        "- The Socket.IO client is python-socketio's `socketio.Client` with two changes: it handles each message in "
        "its reading thread, in order, like a browser's JS thread (by default it starts a thread per message, "
        "which under a flood piles up threads and starves its own ping/pong), and websocket-client's pure-Python "
        "UTF-8 check is off (a browser checks natively). It shares the 2 cores with the broker, the publishers "
        "and the lab server, so at high rates it is the slowest part of the path.",
        "",
        "## 1. Latency publish -> receipt at 100 msg/s",
        "",
        "Each message carries its publish time; the lab's Socket.IO client and a raw pika consumer (its own process, "
        "a queue bound to the same exchange) receive the same publishes at the same time.",
        "",
        "| receiver | received | p50 | p99 |",
        "|---|---|---|---|",
        f"| Socket.IO client through the lab (tap) | {lat['lab_received']}/{lat['messages']} | "
        f"{lat['lab_p50']:.2f} ms | {lat['lab_p99']:.2f} ms |",
        f"| raw pika consumer, auto-ack | {lat['raw_received']}/{lat['messages']} | "
        f"{lat['raw_p50']:.2f} ms | {lat['raw_p99']:.2f} ms |",
        "",
        "## 2. Highest sustained rate with exact counts",
        "",
        f"Raw pika consume rate (auto-ack, one process draining a queue pre-filled with 64-byte messages): "
        f"**{thr['raw_consume']:,.0f} msg/s** (the filling publisher reached {thr['raw_publish']:,.0f} msg/s).",
        "",
        "**The same drain through the lab** (the ratio the target is about): a lab consumer (`POST /api/consumers`, "
        f"auto-ack) on a queue pre-filled with {drain['messages']:,} messages, its `delivery` events through the "
        f"hub to the client: **{drain['rate']:,.0f} msg/s** at the client = "
        f"**{drain['rate'] / thr['raw_consume']:.2f}x** raw (target: at least 0.5); received {drain['received']:,}, "
        f"dropped from the view {drain['dropped']:,} ({'exact' if drain['exact'] else 'NOT exact'}: received + "
        f"dropped = {drain['received'] + drain['dropped']:,}); the lab server used {drain['server_cpu']:.0%} of a "
        "core meanwhile.",
        "",
        "**Paced publishing, live through a tap**: publisher processes "
        f"(one per {PER_PUBLISHER:,} msg/s) paced at each target rate for "
        f"{thr['step_seconds']:g} s; a step passes when "
        "the client received every message (received == published, nothing dropped from its view) within 3 s "
        f"of the end. The ladder stops at the first step that is not exact or whose publishers reach less than "
        f"{KEPT_UP:.0%} of the target.",
        "",
        "Before each lab step, the same publishers run at the same target into an exchange of their own whose "
        "queue a raw pika consumer process drains (auto-ack): the raw column shows what this machine's "
        "publishers and a plain consumer reach at that moment.",
        "",
        "| target msg/s | raw pika: achieved msg/s, exact | lab: published | achieved msg/s | received "
        "| dropped from view | exact | lab server CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in thr["steps"]:
        lines.append(
            f"| {s['target']:,} | {s['raw_achieved']:,.0f}, {'yes' if s['raw_exact'] else 'NO'} | {s['published']:,} "
            f"| {s['achieved']:,.0f} | {s['received']:,} | {s['dropped']:,} "
            f"| {'yes' if s['exact'] else 'NO'} | {s['server_cpu']:.0%} |"
        )
    limited = ""
    if thr["limited_by_publisher"]:
        limited = (
            f" (at the last step the publishers reached less than {KEPT_UP:.0%} of the target, for raw pika too: "
            "a lower bound of what the lab passes on)"
        )
    elif thr["pushed_back"]:
        limited = (
            f" (at the last step raw pika's publishers kept up but the lab's fell below {KEPT_UP:.0%} of the "
            "target: the lab's tap pushed back through the broker's flow control and nothing was lost; the lab server "
            f"used {thr['steps'][-1]['server_cpu']:.0%} of a core there)"
        )
    lines += [
        "",
        f"Highest paced rate received exactly: **{thr['best']:,.0f} msg/s** = {thr['ratio']:.2f}x the raw pika "
        f"drain rate{limited}.",
        "",
        "## 3. Server memory during a long flood",
        "",
        f"A flood at {mem['rate']:,.0f} msg/s for {mem['seconds']:.0f} s through the tap, with the normal client "
        "and one stalled client (a websocket that never reads after connecting: the server must not buffer for it).",
        "",
        "| RSS at start | RSS after 10 s | RSS at the end | RSS max |",
        "|---|---|---|---|",
        f"| {mem['rss_start']:.1f} MB | {mem['rss_10s']:.1f} MB | {mem['rss_end']:.1f} MB | {mem['rss_max']:.1f} MB |",
        "",
        f"End vs 10 s: {mem['rss_end'] - mem['rss_10s']:+.1f} MB. The normal client received {mem['received']:,} "
        f"of {mem['published']:,} and was told of {mem['dropped']:,} dropped from its view "
        f"(received + dropped = {mem['received'] + mem['dropped']:,}); its last event arrived "
        f"{mem['catch_up']:.1f} s after the publishers stopped (how far behind it ran)"
        + ("." if mem["client_connected"] else "; the client had lost its connection by the end."),
        "",
    ]
    return "\n".join(lines)


def print_report(text: str, out: str) -> None:
    """Print a results report and write it to ``out`` (``-``: print only)."""
    print(text)
    if out != "-":
        Path(out).write_text(text)
        print(f"written to {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--amqp-url", default=os.environ.get("RABBITLENS_AMQP_URL", DEFAULT_URL))
    parser.add_argument("--port", type=int, default=0, help="port of the lab server (default: a free one)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-live.md"), help="'-' for stdout only")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    command = "python -m bench.live_bench" + (" --quick" if args.quick else "")
    results = Bench(args).run()
    print_report(report(results, args, command, started), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
