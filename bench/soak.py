"""Soak: a steady mixed load on a lab server for N minutes with one broker restart in the middle.

    .venv/bin/python -m bench.soak [--minutes 30] [--rate 50] [--out bench/results-soak.md]

Everything runs on this machine against a private RabbitMQ node the script starts (and restarts, and stops):
- persistent messages (delivery_mode 2) published through ``POST /api/publish`` bursts to a durable queue,
- 4 lab consumers (manual ack, prefetch 10) on that queue,
- a fib server and an RPC burst (``POST /api/rpc/burst``) every 10 s,
- one broker restart at half time.
At the end publishing stops, the queue drains, and the script reports messages published (confirmed), delivered
(unique lab ids seen in ``delivery`` events, and the consumers' exact ack counters), lost (confirmed but never
delivered), RPC calls ok / timed out / failed, and the server's RSS and open file descriptors at start and end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rabbit.localnode import start_private_node  # noqa: E402
from web.launcher import launch_lab  # noqa: E402

EXCHANGE = "soak-ex"
QUEUE = "soak-work"


class DeliveryCounter:
    """Counts unique lab message ids in ``delivery`` events (one by one or inside ``batch``)."""

    def __init__(self, base_url: str) -> None:
        self.ids: set[str] = set()
        self.deliveries = 0
        self.redelivered = 0
        self.view_dropped: dict[str, int] = {}
        self._lock = threading.Lock()
        self.client = socketio.Client(reconnection=True, reconnection_delay_max=2)
        self.client.on("delivery", self._on_delivery)
        self.client.on("batch", self._on_batch)
        self.client.connect(base_url, transports=["websocket"])

    def _on_delivery(self, data: dict[str, Any]) -> None:
        with self._lock:
            self.deliveries += 1
            self.redelivered += bool(data.get("redelivered"))
            if data.get("id"):
                self.ids.add(data["id"])

    def _on_batch(self, batch: dict[str, Any]) -> None:
        for item in batch.get("events", []):
            if item.get("event") == "delivery":
                self._on_delivery(item["data"])
        for name, count in (batch.get("dropped") or {}).items():
            self.view_dropped[name] = max(self.view_dropped.get(name, 0), int(count))


def call(method: str, url: str, **kwargs: Any) -> requests.Response | None:
    try:
        return requests.request(method, url, timeout=60, **kwargs)
    except requests.RequestException:
        return None


def stats(base: str) -> dict[str, Any]:
    return requests.get(base + "/api/stats", timeout=10).json()["process"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=50, help="persistent messages published per second")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-soak.md"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rabbitlens-soak-"))
    node = start_private_node(work / "node", 45900, management=True)
    lab = launch_lab(node.amqp_url, work / "lab.log", node.management_url)
    base = lab.base_url
    published_ids: list[str] = []
    refused = 0
    rpc = {"bursts": 0, "calls": 0, "ok": 0, "timeouts": 0, "errors": 0, "failed_requests": 0}
    try:
        assert call("POST", base + "/api/exchanges", json={"name": EXCHANGE, "type": "direct", "durable": True})
        assert call("POST", base + "/api/queues", json={"name": QUEUE, "durable": True})
        bind = {"source": EXCHANGE, "destination": QUEUE, "destination_type": "queue", "routing_key": "work"}
        assert call("POST", base + "/api/bindings", json=bind)
        consumers = []
        for _ in range(4):
            body = {"queue": QUEUE, "ack": "manual", "prefetch": 10, "work_ms": 2, "on_message": "ack"}
            consumers.append(call("POST", base + "/api/consumers", json=body).json()["id"])
        servers = call("POST", base + "/api/rpc/servers", json={"count": 1, "prefetch": 10, "work_ms": 0})
        print("rpc servers:", servers.status_code if servers else "no answer", flush=True)
        counter = DeliveryCounter(base)
        time.sleep(10)
        start_stats = stats(base)
        print("start:", start_stats, flush=True)

        duration = args.minutes * 60
        t0 = time.monotonic()
        restarted = False
        next_rpc = t0 + 10
        samples: list[tuple[float, dict[str, Any]]] = []  # (minutes, process stats) once a minute
        next_sample = t0 + 60
        while (elapsed := time.monotonic() - t0) < duration:
            tick = time.monotonic()
            answer = call(
                "POST",
                base + "/api/publish",
                json={
                    "exchange": EXCHANGE,
                    "routing_key": "work",
                    "body": f"soak {elapsed:.0f}",
                    "properties": {"delivery_mode": 2},
                    "count": args.rate,
                },
            )
            if answer is not None and answer.status_code == 200:
                result = answer.json()
                if args.rate == 1:
                    if result.get("confirmed"):
                        published_ids.append(result["id"])
                else:
                    burst_id = result["id"]
                    if result["counts"]["confirmed"] == result["count"]:
                        published_ids.extend(f"{burst_id}-{i}" for i in range(1, result["count"] + 1))
                    else:
                        refused += result["count"] - result["counts"]["confirmed"]
            else:
                refused += args.rate
            if time.monotonic() >= next_rpc:
                next_rpc += 10
                burst = call(
                    "POST",
                    base + "/api/rpc/burst",
                    json={"n": 20, "calls": 200, "concurrency": 16, "queue": "rpc_queue"},
                )
                if burst is not None and burst.status_code == 200:
                    summary = burst.json()
                    rpc["bursts"] += 1
                    for key in ("calls", "ok", "timeouts", "errors"):
                        rpc[key] += int(summary.get(key, 0))
                else:
                    rpc["failed_requests"] += 1
            if not restarted and elapsed >= duration / 2:
                restarted = True
                print(f"{elapsed:.0f}s: restarting the broker", flush=True)
                node.restart()
                print(f"{time.monotonic() - t0:.0f}s: broker back", flush=True)
            if time.monotonic() >= next_sample:
                next_sample += 60
                with contextlib.suppress(requests.RequestException, KeyError, ValueError):
                    samples.append((round(elapsed / 60, 1), stats(base)))
                print(
                    f"{elapsed:.0f}s published={len(published_ids)} delivered={len(counter.ids)} "
                    f"rss={samples[-1][1]['rss_bytes'] / 2**20 if samples else 0:.1f}MiB",
                    flush=True,
                )
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

        # Drain: wait until every confirmed message was delivered (or nothing moves for 60 s).
        last, still = -1, time.monotonic()
        while time.monotonic() - still < 60:
            seen = len(counter.ids)
            if set(published_ids) <= counter.ids:
                break
            if seen != last:
                last, still = seen, time.monotonic()
            time.sleep(1)
        end_stats = stats(base)
        acked = sum(
            c["acked"] for c in requests.get(base + "/api/consumers", timeout=10).json() if c["id"] in consumers
        )
        lost = len(set(published_ids) - counter.ids)
        report = {
            "minutes": args.minutes,
            "rate_per_s": args.rate,
            "published_confirmed": len(published_ids),
            "refused_while_broker_down": refused,
            "delivered_unique": len(counter.ids & set(published_ids)),
            "delivery_events": counter.deliveries,
            "redelivered": counter.redelivered,
            "consumer_acks": acked,
            "lost": lost,
            "view_dropped": counter.view_dropped,
            "rpc": rpc,
            "rss_start_mib": round(start_stats["rss_bytes"] / 2**20, 1),
            "rss_end_mib": round(end_stats["rss_bytes"] / 2**20, 1),
            "fds_start": start_stats["open_fds"],
            "fds_end": end_stats["open_fds"],
            "greenlets_start": start_stats["greenlets"],
            "greenlets_end": end_stats["greenlets"],
            "samples": [(minute, round(st["rss_bytes"] / 2**20, 1), st["open_fds"]) for minute, st in samples],
        }
        print(json.dumps(report, indent=2), flush=True)
        write_report(Path(args.out), report)
        counter.client.disconnect()
        return 0 if lost == 0 else 1
    finally:
        for consumer in requests.get(base + "/api/consumers", timeout=10).json() if lab.process.poll() is None else []:
            call("DELETE", f"{base}/api/consumers/{consumer['id']}")
        lab.stop()
        node.stop()


def write_report(path: Path, r: dict[str, Any]) -> None:
    rpc = r["rpc"]
    lines = [
        "# Soak results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, "
        f"Python {platform.python_version()}): "
        f"`python -m bench.soak --minutes {r['minutes']:g} --rate {r['rate_per_s']}`.",
        "A private RabbitMQ node, restarted once at half time; persistent messages to a durable queue with",
        "4 manual-ack consumers; an RPC burst of 200 calls (concurrency 16) every 10 s against one lab fib server.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| messages published (confirmed) | {r['published_confirmed']} |",
        f"| publishes refused while the broker was down (never confirmed) | {r['refused_while_broker_down']} |",
        f"| delivered (unique lab ids) | {r['delivered_unique']} |",
        f"| **lost** (confirmed, never delivered) | **{r['lost']}** |",
        f"| delivery events / redelivered | {r['delivery_events']} / {r['redelivered']} |",
        f"| consumer acks (exact counters) | {r['consumer_acks']} |",
        f"| events dropped from the view | {r['view_dropped'] or 0} |",
        f"| RPC bursts / calls / ok / timed out / errors | {rpc['bursts']} / {rpc['calls']} / {rpc['ok']} / "
        f"{rpc['timeouts']} / {rpc['errors']} |",
        f"| RPC bursts refused (HTTP error) | {rpc['failed_requests']} |",
        f"| server RSS start → end (MiB) | {r['rss_start_mib']} → {r['rss_end_mib']} |",
        f"| open file descriptors start → end | {r['fds_start']} → {r['fds_end']} |",
        f"| greenlets start → end | {r['greenlets_start']} → {r['greenlets_end']} |",
        "",
        "RSS (MiB) and open file descriptors of the lab server, once a minute:",
        "",
        "| minute | " + " | ".join(f"{m:g}" for m, _, _ in r["samples"]) + " |",
        "|---|" + "---|" * len(r["samples"]),
        "| RSS | " + " | ".join(f"{rss:g}" for _, rss, _ in r["samples"]) + " |",
        "| fds | " + " | ".join(str(fds) for _, _, fds in r["samples"]) + " |",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
