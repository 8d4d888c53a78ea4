"""Benchmark of confirmed bursts: the lab's ``POST /api/publish`` with ``count``, side by side with raw pika.

    .venv/bin/python -m bench.burst_bench [--count 10000] [--rounds 3] [--amqp-url URL] [--out bench/results-burst.md]

In one run, into queues of its own on the same broker, with 64-byte bodies and publisher confirms on every message:

1. raw pika, ``BlockingConnection``: ``basic_publish`` in confirm mode, which waits for each confirm (the
   tutorials' way, and the lab's bursts before they pipelined);
2. raw pika, ``SelectConnection``: up to 1,000 messages waiting for their confirms (the same window as the lab);
3. the lab: ``POST /api/publish`` ``{"count": N}`` against a lab server the benchmark starts (``python app.py``),
   timed from the request to the answer, which comes once every copy is confirmed.

Each is run ``--rounds`` times; the table shows the median and the range.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from typing import Any

import pika
import requests

from bench.live_bench import BODY_64, DEFAULT_URL, ROOT, Bench, machine, print_report

WINDOW = 1000


def blocking_confirmed(url: str, queue: str, count: int) -> float:
    """Raw pika, one confirm at a time; returns msg/s."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    start = time.perf_counter()
    for _ in range(count):
        channel.basic_publish("", queue, BODY_64)
    elapsed = time.perf_counter() - start
    connection.close()
    return count / elapsed


def pipelined_confirmed(url: str, queue: str, count: int, window: int = WINDOW) -> float:
    """Raw pika, ``SelectConnection``, up to ``window`` unconfirmed; returns msg/s once every confirm is in."""
    state: dict[str, Any] = {"sent": 0, "acked": 0, "start": 0.0, "end": 0.0}
    outstanding: set[int] = set()

    def fill(channel: Any) -> None:
        while state["sent"] < count and len(outstanding) < window:
            state["sent"] += 1
            outstanding.add(state["sent"])
            channel.basic_publish("", queue, BODY_64)

    def on_confirm(frame: Any) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        done = [t for t in outstanding if t <= tag] if multiple else [tag]
        for t in done:
            outstanding.discard(t)
        state["acked"] += len(done)
        if state["acked"] >= count:
            state["end"] = time.perf_counter()
            connection.close()
        else:
            fill(state["channel"])

    def on_channel(channel: Any) -> None:
        state["channel"] = channel
        state["start"] = time.perf_counter()
        channel.confirm_delivery(on_confirm, callback=lambda _: fill(channel))

    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        on_close_callback=lambda conn, reason: conn.ioloop.stop(),
    )
    connection.ioloop.start()
    connection.ioloop.close()
    if state["acked"] < count:
        raise RuntimeError(f"raw pipelined publisher: {state['acked']} of {count} confirmed")
    return count / (state["end"] - state["start"])


def lab_burst(base_url: str, queue: str, count: int) -> tuple[float, float]:
    """The lab's burst: (msg/s from request to answer, the rate the lab reports)."""
    start = time.perf_counter()
    answer = requests.post(
        base_url + "/api/publish", json={"routing_key": queue, "body": BODY_64.decode(), "count": count}, timeout=120
    )
    elapsed = time.perf_counter() - start
    answer.raise_for_status()
    result = answer.json()
    if result["counts"]["confirmed"] != count or result["counts"]["routed"] != count:
        raise RuntimeError(f"lab burst not fully confirmed and routed: {result['counts']}")
    return count / elapsed, result["rate"]


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f} to {max(values):,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages per burst (the lab's default limit)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--amqp-url", default=DEFAULT_URL)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-burst.md"), help="'-' for stdout only")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    token = uuid.uuid4().hex[:8]
    bench = Bench(argparse.Namespace(amqp_url=args.amqp_url, port=0, quick=True))
    connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    channel = connection.channel()
    queues = {kind: f"rl-bench-burst-{kind}-{token}" for kind in ("blocking", "pipelined", "lab")}
    for queue in queues.values():
        channel.queue_declare(queue)
    results: dict[str, list[float]] = {"blocking": [], "pipelined": [], "lab": [], "lab_reported": []}
    bench.start_server()
    try:
        version = requests.get(bench.base_url + "/api/health", timeout=5).json()["broker"]["server_version"]
        # One-by-one confirms are slow: a fifth of the count keeps the run short (a rate does not need more).
        blocking_count = max(1000, args.count // 5)
        for round_ in range(1, args.rounds + 1):
            results["blocking"].append(blocking_confirmed(args.amqp_url, queues["blocking"], blocking_count))
            results["pipelined"].append(pipelined_confirmed(args.amqp_url, queues["pipelined"], args.count))
            wall, reported = lab_burst(bench.base_url, queues["lab"], args.count)
            results["lab"].append(wall)
            results["lab_reported"].append(reported)
            print(
                f"round {round_}: raw one-by-one {results['blocking'][-1]:,.0f}, raw pipelined "
                f"{results['pipelined'][-1]:,.0f}, lab {wall:,.0f} (it reports {reported:,.0f}) msg/s",
                flush=True,
            )
            for queue in queues.values():
                channel.queue_purge(queue)
    finally:
        bench.server.terminate()
        bench.server.wait(10)
        for queue in queues.values():
            channel.queue_delete(queue)
        connection.close()

    lab, raw = statistics.median(results["lab"]), statistics.median(results["pipelined"])
    one_by_one = statistics.median(results["blocking"])
    command = "python -m bench.burst_bench" + (f" --count {args.count}" if args.count != 10_000 else "")
    lines = [
        "# Burst benchmark: confirmed publishes, the lab beside raw pika",
        "",
        f"- Date: {started} (UTC)",
        f"- Machine: {machine()}",
        f"- Broker: RabbitMQ {version}, `{args.amqp_url.split('@')[-1]}`",
        f"- Command: `{command}`",
        f"- {args.rounds} rounds; 64-byte bodies; every message confirmed; median (min to max) msg/s.",
        "",
        "| publisher | messages per round | msg/s |",
        "|---|---|---|",
        f"| raw pika `BlockingConnection`, one confirm at a time | {blocking_count:,} "
        f"| {summary(results['blocking'])} |",
        f"| raw pika `SelectConnection`, {WINDOW:,} in flight | {args.count:,} | {summary(results['pipelined'])} |",
        f"| lab `POST /api/publish` `count`, request -> answer | {args.count:,} | {summary(results['lab'])} |",
        f"| (the rate the lab reports in its answer) | | {summary(results['lab_reported'])} |",
        "",
        f"The lab's burst: **{lab / raw:.2f}x** raw pika with the same window, **{lab / one_by_one:.1f}x** raw pika "
        "with one confirm at a time. Its request -> answer time includes the HTTP round trip, the routing "
        "prediction, the connection the burst opens and closes, and a `published` event per message into the "
        "live hub.",
        "",
    ]
    print_report("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
