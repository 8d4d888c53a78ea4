"""RPC benchmark: the tutorial's client, raw pika, and the lab's client, in one run against the same broker.

    .venv/bin/python bench/rpc_bench.py [--amqp-url URL] [--calls 5000] [--rounds 3] [--out bench/results-rpc.md]

Every pattern calls the same fib servers (``python -m rabbit.fib_server``, started here on a queue of this run)
for fib(1):

1. the tutorial's client: one call at a time, waiting in a busy loop (``while response is None:
   connection.process_data_events()``), an exclusive callback queue;
2. raw pika, asynchronous (``SelectConnection``), direct reply-to, 1 call in flight (the serial baseline) and
   64 in flight (the pipelined baseline);
3. the lab's client through ``POST /api/rpc/burst`` on a real lab process (``app.py``, gevent), concurrency 1
   and 64, both reply modes at 64;
4. CPU: the lab process while one ``POST /api/rpc/call`` waits on a slow server (``--work-ms``), and the
   tutorial client while it waits on the same slow server.

Rounds are interleaved (pattern A, B, C, then again) and the median round is reported, because other work on
the machine moves single runs around.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pika
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rabbit.localnode import free_port_block  # noqa: E402
from rabbit.rpc import percentile  # noqa: E402

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def summarize(latencies_ms: list[float], seconds: float) -> dict:
    lat = sorted(latencies_ms)
    return {
        "calls": len(lat),
        "calls_per_s": len(lat) / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99),
    }


# ------------------------------------------------------------------------------------------ the patterns
def tutorial_client(url: str, queue: str, calls: int) -> dict:
    """The RPC tutorial's client, unchanged in spirit: serial calls and a busy wait."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    callback_queue = channel.queue_declare("", exclusive=True).method.queue
    state = {"response": None, "corr_id": None}

    def on_response(ch, method, props, body):
        if state["corr_id"] == props.correlation_id:
            state["response"] = body

    channel.basic_consume(callback_queue, on_response, auto_ack=True)
    latencies = []
    started = time.perf_counter()
    for _ in range(calls):
        state["response"] = None
        state["corr_id"] = str(uuid.uuid4())
        t0 = time.perf_counter()
        channel.basic_publish(
            "", queue, b"1", pika.BasicProperties(reply_to=callback_queue, correlation_id=state["corr_id"])
        )
        while state["response"] is None:
            connection.process_data_events()
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    connection.close()
    return summarize(latencies, elapsed)


def raw_pika(url: str, queue: str, calls: int, concurrency: int) -> dict:
    """Asynchronous pika with direct reply-to and ``concurrency`` calls in flight."""
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    state = {"sent": 0, "t0": 0.0, "t1": 0.0}
    props_cache = {}

    def send(channel) -> None:
        cid = str(state["sent"])
        state["sent"] += 1
        props = props_cache.setdefault(cid, pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id=cid))
        sent_at[cid] = time.perf_counter()
        channel.basic_publish("", queue, b"1", props)

    def on_reply(channel, method, props, body) -> None:
        t = sent_at.pop(props.correlation_id, None)
        if t is None:
            return
        latencies.append((time.perf_counter() - t) * 1000)
        if state["sent"] < calls:
            send(channel)
        elif not sent_at:
            state["t1"] = time.perf_counter()
            connection.close()

    def on_consuming(channel) -> None:
        state["t0"] = time.perf_counter()
        for _ in range(min(concurrency, calls)):
            send(channel)

    def on_channel(channel) -> None:
        channel.basic_consume(
            "amq.rabbitmq.reply-to", on_reply, auto_ack=True, callback=lambda _frame: on_consuming(channel)
        )

    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        on_close_callback=lambda conn, reason: conn.ioloop.stop(),
    )
    connection.ioloop.start()
    return summarize(latencies, state["t1"] - state["t0"])


def lab_burst(base: str, queue: str, calls: int, concurrency: int, reply_mode: str) -> dict:
    t0 = time.perf_counter()
    response = requests.post(
        base + "/api/rpc/burst",
        json={"n": 1, "calls": calls, "concurrency": concurrency, "queue": queue, "reply_mode": reply_mode},
        timeout=300,
    )
    wall = time.perf_counter() - t0
    response.raise_for_status()
    s = response.json()
    assert s["ok"] == calls, s
    return {
        "calls": s["calls"],
        "calls_per_s": s["calls_per_s"],
        "p50_ms": s["p50_ms"],
        "p99_ms": s["p99_ms"],
        "http_calls_per_s": calls / wall,
    }


# ------------------------------------------------------------------------------------------ CPU
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def lab_cpu_while_waiting(base: str, pid: int, slow_queue: str, seconds: float) -> dict:
    result: dict = {}
    caller = threading.Thread(
        target=lambda: result.update(
            requests.post(
                base + "/api/rpc/call", json={"n": 2, "queue": slow_queue, "timeout_s": 60}, timeout=90
            ).json()
        )
    )
    caller.start()
    time.sleep(0.5)  # the call is out and waiting
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.perf_counter()
    caller.join(120)
    assert result.get("result") == "1", result
    return {"cpu_percent": 100 * (c1 - c0) / (t1 - t0), "seconds": t1 - t0, "latency_ms": result["latency_ms"]}


def tutorial_cpu_while_waiting(url: str, slow_queue: str) -> dict:
    c0, t0 = time.process_time(), time.perf_counter()
    s = tutorial_client(url, slow_queue, 1)
    c1, t1 = time.process_time(), time.perf_counter()
    return {"cpu_percent": 100 * (c1 - c0) / (t1 - t0), "seconds": t1 - t0, "latency_ms": s["p50_ms"]}


def idle_cpu(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------ set-up
def start_fib(url: str, queue: str, tmp: Path, sid: str, *extra: str) -> subprocess.Popen:
    status = tmp / f"{sid}.json"
    args = [sys.executable, "-m", "rabbit.fib_server", "--amqp-url", url, "--queue", queue, "--server-id", sid]
    args += ["--status-file", str(status), *extra]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if json.loads(status.read_text()).get("state") == "serving":
                return process
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"fib server {sid} did not start")


def start_lab(url: str, port: int, log: Path) -> subprocess.Popen:
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--amqp-url", url],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/api/rpc/status", timeout=1).json()["client"]["state"] == "connected":
                return process
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"lab did not start: {log.read_text()}")


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp-url", default=os.environ.get("RABBITLENS_AMQP_URL", DEFAULT_URL))
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--prefetch", type=int, default=100)
    parser.add_argument("--slow-ms", type=int, default=6000, help="work of the slow server for the CPU check")
    parser.add_argument("--port", type=int, default=0, help="lab port (default: a free one from 58600)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-rpc.md"))
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="rpc-bench-"))
    token = uuid.uuid4().hex[:6]
    queue, slow_queue = f"bench-rpc-{token}", f"bench-rpc-slow-{token}"
    port = args.port or free_port_block(58600, size=1)
    base = f"http://127.0.0.1:{port}"
    processes: list[subprocess.Popen] = []
    load_before = os.getloadavg()
    try:
        for i in range(args.servers):
            processes.append(start_fib(args.amqp_url, queue, tmp, f"b{i + 1}", "--prefetch", str(args.prefetch)))
        processes.append(start_fib(args.amqp_url, slow_queue, tmp, "slow", "--work-ms", str(args.slow_ms)))
        lab = start_lab(args.amqp_url, port, tmp / "lab.log")
        processes.append(lab)

        patterns = {
            "tutorial client (serial, busy loop)": lambda n: tutorial_client(args.amqp_url, queue, n),
            "raw pika, direct reply-to, 1 in flight": lambda n: raw_pika(args.amqp_url, queue, n, 1),
            "raw pika, direct reply-to, 64 in flight": lambda n: raw_pika(args.amqp_url, queue, n, 64),
            "lab burst, callback queue, concurrency 1": lambda n: lab_burst(base, queue, n, 1, "callback_queue"),
            "lab burst, direct reply-to, concurrency 1": lambda n: lab_burst(base, queue, n, 1, "direct_reply_to"),
            "lab burst, callback queue, concurrency 64": lambda n: lab_burst(base, queue, n, 64, "callback_queue"),
            "lab burst, direct reply-to, concurrency 64": lambda n: lab_burst(base, queue, n, 64, "direct_reply_to"),
        }
        for run in patterns.values():  # warm-up: connections, JIT-free but caches and queues settle
            run(200)
        rounds: dict[str, list[dict]] = {name: [] for name in patterns}
        for r in range(args.rounds):
            for name, run in patterns.items():
                rounds[name].append(run(args.calls))
                print(f"round {r + 1} {name}: {rounds[name][-1]}", flush=True)

        def median_round(name: str) -> dict:
            ordered = sorted(rounds[name], key=lambda s: s["calls_per_s"])
            return ordered[len(ordered) // 2]

        results = {name: median_round(name) for name in patterns}
        idle = idle_cpu(lab.pid, 3.0)
        lab_wait = lab_cpu_while_waiting(base, lab.pid, slow_queue, seconds=min(4.0, args.slow_ms / 1000 - 1.0))
        tut_wait = tutorial_cpu_while_waiting(args.amqp_url, slow_queue)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        try:
            connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
            for name in (queue, slow_queue):
                connection.channel().queue_delete(name)
            connection.close()
        except Exception as exc:
            print(f"cleanup: {exc}", file=sys.stderr)
    load_after = os.getloadavg()

    tut = results["tutorial client (serial, busy loop)"]

    def ratio(a: float | None, b: float | None) -> float:
        return a / b if a and b else float("nan")

    def per_round(fn) -> float:
        """The median over rounds of a ratio taken within each round (patterns seconds apart, same load)."""
        return statistics.median(fn({name: rounds[name][r] for name in patterns}) for r in range(args.rounds))

    targets = []
    for mode in ("callback queue", "direct reply-to"):
        c1, c64 = f"lab burst, {mode}, concurrency 1", f"lab burst, {mode}, concurrency 64"
        p50 = per_round(lambda x, c1=c1: ratio(x[c1]["p50_ms"], x["raw pika, direct reply-to, 1 in flight"]["p50_ms"]))
        vs_tut = per_round(
            lambda x, c64=c64: ratio(x[c64]["calls_per_s"], x["tutorial client (serial, busy loop)"]["calls_per_s"])
        )
        vs_raw = per_round(
            lambda x, c64=c64: ratio(x[c64]["calls_per_s"], x["raw pika, direct reply-to, 64 in flight"]["calls_per_s"])
        )
        targets += [
            (f"lab c=1 p50 / raw pika serial p50 ({mode})", p50, "<= 1.5", p50 <= 1.5),
            (f"lab c=64 calls/s / tutorial calls/s ({mode})", vs_tut, ">= 2.5", vs_tut >= 2.5),
            (f"lab c=64 calls/s / raw pika 64-in-flight calls/s ({mode})", vs_raw, ">= 0.6", vs_raw >= 0.6),
        ]
    cpu = lab_wait["cpu_percent"]
    targets.append(("lab CPU while one call waits (% of a core)", cpu, "< 5", cpu < 5))

    lines = [
        "# RPC benchmark results",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}, pika {pika.__version__}), broker {args.amqp_url.split('@')[-1]}.",
        f"Load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (other work on the machine moves "
        "these figures; all patterns ran interleaved in the same run).",
        f"fib(1), {args.calls} calls per pattern, median of {args.rounds} interleaved rounds (by calls/s); "
        f"{args.servers} fib servers (`rabbit.fib_server`, prefetch {args.prefetch}) serve every pattern.",
        "",
        "| pattern | calls/s | p50 ms | p99 ms | vs tutorial calls/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in results.items():
        lines.append(
            f"| {name} | {fmt(s['calls_per_s'], 0)} | {fmt(s['p50_ms'], 3)} | {fmt(s['p99_ms'], 3)} | "
            f"{s['calls_per_s'] / tut['calls_per_s']:.2f}x |"
        )
    lines += [
        "",
        "The lab's figures are measured inside the app, from the first request sent to the last reply; the whole",
        "HTTP request of each burst (including the queue check and JSON) ran at "
        + ", ".join(
            f"{fmt(s['http_calls_per_s'], 0)}/s ({name.removeprefix('lab burst, ')})"
            for name, s in results.items()
            if "http_calls_per_s" in s
        )
        + ".",
        "",
        "## CPU while one call waits on a slow server",
        "",
        f"A fib server with `--work-ms {args.slow_ms}`; CPU time of the process divided by wall time.",
        "",
        "| process | CPU (% of one core) | over | the call took |",
        "|---|---:|---:|---:|",
        f"| lab app (gevent), one `POST /api/rpc/call` waiting | {lab_wait['cpu_percent']:.2f} % | "
        f"{lab_wait['seconds']:.1f} s | {lab_wait['latency_ms'] / 1000:.2f} s |",
        f"| lab app, idle (for comparison) | {idle:.2f} % | 3.0 s | — |",
        f"| tutorial client, busy loop waiting | {tut_wait['cpu_percent']:.1f} % | {tut_wait['seconds']:.1f} s | "
        f"{tut_wait['latency_ms'] / 1000:.2f} s |",
        "",
        "## Targets",
        "",
        "Each ratio is taken within one round (the patterns ran seconds apart) and the median over the rounds is",
        "shown, so a burst of load from other work hits both sides of a ratio alike.",
        "",
        "| target | measured | wanted | met |",
        "|---|---:|---:|:---:|",
    ]
    for name, value, wanted, met in targets:
        lines.append(f"| {name} | {value:.2f} | {wanted} | {'yes' if met else 'NO'} |")
    lines += [
        "",
        "## Every round (calls/s)",
        "",
        "| pattern | " + " | ".join(f"round {r + 1}" for r in range(args.rounds)) + " |",
    ]
    lines.append("|---|" + "---:|" * args.rounds)
    for name in patterns:
        lines.append(f"| {name} | " + " | ".join(fmt(s["calls_per_s"], 0) for s in rounds[name]) + " |")
    lines += [
        "",
        "Reproduce: `.venv/bin/python bench/rpc_bench.py` (needs a broker on the URL; starts its own servers and lab).",
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
