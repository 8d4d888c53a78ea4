"""Benchmark of the routing engine: the trie and the indexed topology beside the linear scan, alone and through the API.

    .venv/bin/python -m bench.routing_bench [--bindings 10000] [--amqp-url URL] [--out bench/results-routing.md]

1. The engine alone, on one topic exchange with ``--bindings`` generated binding keys (words, ``*`` and ``#``) to
   100 queues, for 1,000 generated routing keys: the linear scan (every binding tested with the word-by-word
   matcher), the old engine's way (every binding explained, matched or not), the trie's match alone, the indexed
   route with the explanations of its matches, and what ``POST /api/route`` asks (plus 50 misses explained and
   10 near misses, each fix routed).
2. Through the API: it starts its own lab server (``python app.py``) on the shared broker, declares that exchange
   and its bindings through ``POST /api/bindings`` plus an exchange with one binding, then times ``POST
   /api/route`` on each (p50 / p99, after a warm-up). Everything it declared is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.common import cpu_model, percentile
from rabbit.routing import BindingInfo, ExchangeInfo, RoutingIndex, route, route_indexed, topic_matches

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
QUEUES = 100
WORDS = [[f"{kind}{i}" for i in range(n)] for kind, n in (("region", 12), ("service", 30), ("event", 40))]


# --------------------------------------------------------------------------- the topology
def binding_keys(count: int, rng: random.Random) -> list[str]:
    """Distinct binding keys like ``region3.service7.event12``, with `*` and `#` in some places."""
    found: dict[str, None] = {}
    while len(found) < count:
        tokens = []
        for position, words in enumerate(WORDS):
            roll = rng.random()
            if roll < 0.08:
                tokens.append("*")
            elif roll < 0.11 and position > 0:
                tokens.append("#")
            else:
                tokens.append(rng.choice(words))
        if rng.random() < 0.1:
            tokens.append(rng.choice(["created", "deleted", "#"]))
        found[".".join(tokens)] = None
    return list(found)


def routing_keys(count: int, rng: random.Random) -> list[str]:
    keys = []
    for _ in range(count):
        words = [rng.choice(w) for w in WORDS]
        if rng.random() < 0.1:
            words.append(rng.choice(["created", "deleted"]))
        if rng.random() < 0.1:
            words.pop()
        keys.append(".".join(words))
    return keys


# --------------------------------------------------------------------------- figures
def timed(fn: Any, items: list[Any]) -> dict[str, float]:
    """Milliseconds per call of ``fn(item)``: p50, p99, mean."""
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": percentile(times, 50), "p99": percentile(times, 99), "mean": statistics.fmean(times)}


def machine() -> str:
    cpu = cpu_model()
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


# --------------------------------------------------------------------------- 1. the engine alone
def engine(count: int, rng: random.Random) -> dict[str, Any]:
    patterns = binding_keys(count, rng)
    exchanges = [ExchangeInfo("big", "topic")]
    bindings = [BindingInfo("big", f"q{i % QUEUES}", "queue", p) for i, p in enumerate(patterns)]
    queues = [f"q{i}" for i in range(QUEUES)]
    keys = routing_keys(1000, rng)
    started = time.perf_counter()
    index = RoutingIndex(exchanges, bindings, queues)
    build_ms = (time.perf_counter() - started) * 1000
    trie = index.trie("big")
    assert trie is not None
    disagreements = sum(trie.match(k) != {i for i, p in enumerate(patterns) if topic_matches(p, k)} for k in keys[:100])
    matched = [len(trie.match(k)) for k in keys]
    near = [
        len(route_indexed(index, "big", k, explain_misses=50, near_misses=10).near_misses or []) for k in keys[:200]
    ]
    return {
        "bindings": count,
        "keys": len(keys),
        "build_ms": build_ms,
        "matches_per_key": statistics.fmean(matched),
        "near_per_key": statistics.fmean(near),
        "disagreements": disagreements,
        "linear_match": timed(lambda k: [b for b in bindings if topic_matches(b.routing_key, k)], keys[:200]),
        "linear_explained": timed(lambda k: route(exchanges, bindings, "big", k, queues=queues), keys[:50]),
        "trie_match": timed(trie.match, keys),
        "indexed_matches_explained": timed(lambda k: route_indexed(index, "big", k, explain_misses=0), keys),
        "indexed_as_api": timed(
            lambda k: route_indexed(index, "big", k, explain_misses=50, near_misses=10).to_dict(), keys
        ),
    }


# --------------------------------------------------------------------------- 2. through the API
class Lab:
    def __init__(self, url: str, root: Path = ROOT) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(f"/tmp/routing-bench-{self.port}.log")
        cmd = [sys.executable, str(root / "app.py"), "--port", str(self.port), "--amqp-url", url]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT)
        self.http = requests.Session()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get(self.base + "/api/session", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"the lab server did not answer: {self.log.read_text()[-2000:]}")

    def post(self, path: str, body: dict[str, Any], ok: int = 201) -> dict[str, Any]:
        response = self.http.post(self.base + path, json=body, timeout=30)
        assert response.status_code == ok, response.text
        return response.json() if response.content else {}

    def delete(self, path: str) -> None:
        self.http.delete(self.base + path, timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def through_api(
    url: str, count: int, rng: random.Random, requests_per_exchange: int, root: Path = ROOT
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    big, small = f"bench-routing-big-{tag}", f"bench-routing-small-{tag}"
    queues = [f"bench-routing-q{i}-{tag}" for i in range(QUEUES)]
    lab = Lab(url, root)
    made_exchanges: list[str] = []
    made_queues: list[str] = []
    try:
        for name in (big, small):
            lab.post("/api/exchanges", {"name": name, "type": "topic", "auto_delete": False})
            made_exchanges.append(name)
        for name in queues:
            lab.post("/api/queues", {"name": name})
            made_queues.append(name)
        lab.post("/api/bindings", {"source": small, "destination": queues[0], "routing_key": "region1.#"})
        patterns = binding_keys(count, rng)
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda ip: lab.post(
                        "/api/bindings",
                        {"source": big, "destination": queues[ip[0] % QUEUES], "routing_key": ip[1]},
                    ),
                    enumerate(patterns),
                )
            )
        bind_s = time.perf_counter() - started
        keys = routing_keys(requests_per_exchange, rng)
        results: dict[str, Any] = {"bind_s": bind_s, "requests": requests_per_exchange}
        for label, exchange in (("big", big), ("small", small)):
            for key in keys[:20]:  # warm-up: the first call builds the index of this topology version
                lab.post("/api/route", {"exchange": exchange, "routing_key": key}, ok=200)
            answers: list[dict[str, Any]] = []
            results[label] = timed(
                lambda k, exchange=exchange, answers=answers: answers.append(
                    lab.post("/api/route", {"exchange": exchange, "routing_key": k}, ok=200)
                ),
                keys,
            )
            results[label]["matches"] = statistics.fmean(len(a["matches"]) for a in answers)
            results[label]["near"] = statistics.fmean(len(a.get("near_misses", [])) for a in answers)
        return results
    finally:
        for name in made_queues:
            lab.delete(f"/api/queues/{requests.utils.quote(name, safe='')}")
        for name in made_exchanges:
            lab.delete(f"/api/exchanges/{requests.utils.quote(name, safe='')}")
        lab.stop()


# --------------------------------------------------------------------------- the report
def row(label: str, figures: dict[str, float]) -> str:
    return f"| {label} | {figures['p50']:.3f} ms | {figures['p99']:.3f} ms | {figures['mean']:.3f} ms |"


def report(alone: dict[str, Any], api: dict[str, Any] | None, args: argparse.Namespace, started: str) -> str:
    n = alone["bindings"]
    lines = [
        "# Routing benchmark: the trie and the indexed topology beside the linear scan",
        "",
        f"- Date: {started} (UTC)",
        f"- Machine: {machine()}",
        f"- Command: `python -m bench.routing_bench --bindings {n}`",
        f"- Topology: one topic exchange with {n:,} distinct binding keys of three or four tokens (12 x 30 x 40 "
        "words, about 8% `*` and 3% `#` per position) to 100 queues; 1,000 routing keys of the same words "
        f"(a tenth one word longer or shorter): {alone['matches_per_key']:.1f} matching bindings per key on average.",
        f"- The trie and the linear matcher disagreed on {alone['disagreements']} of 100 keys x {n:,} bindings.",
        "",
        "## 1. The engine alone (per routing key)",
        "",
        "| what | p50 | p99 | mean |",
        "|---|---|---|---|",
        row("linear scan: every binding tested word by word (match only)", alone["linear_match"]),
        row(
            "old engine: every binding explained, matched or not (`route()` without limits)", alone["linear_explained"]
        ),
        row("trie: the matching bindings (target < 1 ms)", alone["trie_match"]),
        row("indexed route with the explanations of its matches (target < 5 ms)", alone["indexed_matches_explained"]),
        row(
            f"as `POST /api/route` asks: matches explained, 50 misses explained, 10 near misses (each fix routed), "
            f"`to_dict()`; {alone['near_per_key']:.1f} near misses per key",
            alone["indexed_as_api"],
        ),
        "",
        f"Building the index (the trie of {n:,} keys): {alone['build_ms']:.0f} ms, once per topology version.",
    ]
    if api is not None:
        lines += [
            "",
            "## 2. Through the API (`POST /api/route`, HTTP round trip included)",
            "",
            f"A lab server (`python app.py`, no management API: the lab's own registry) on the shared broker; the "
            f"{n:,} bindings made through `POST /api/bindings` (4 at a time) in {api['bind_s']:.0f} s; "
            f"{api['requests']} requests per exchange after 20 warm-up requests, one at a time.",
            "",
            "| exchange | p50 | p99 | mean |",
            "|---|---|---|---|",
            row(
                f"{n:,} bindings ({api['big']['matches']:.1f} matches, {api['big']['near']:.1f} near misses)",
                api["big"],
            ),
            row("one binding", api["small"]),
            "",
            "Before the index (the issue's figures, same vhost size): about 750 ms (p50) for the big exchange and "
            "110 ms for the one-binding exchange, the whole topology rebuilt and every binding explained per call. "
            "Target: both within 10 ms (p50).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bindings", type=int, default=10_000)
    parser.add_argument("--amqp-url", default=DEFAULT_URL)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--engine-only", action="store_true")
    parser.add_argument(
        "--app-root", default=str(ROOT), help="run the API part against the lab server of another checkout (before)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-routing.md"))
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    rng = random.Random(18)
    alone = engine(args.bindings, rng)
    print(report(alone, None, args, started))
    root = Path(args.app_root)
    api = None if args.engine_only else through_api(args.amqp_url, args.bindings, rng, args.requests, root)
    text = report(alone, api, args, started)
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
