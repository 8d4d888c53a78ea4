"""Refresh the README's screenshots: a lab on the local broker, a small demo (topic exchange, consumers, fib
servers, RPC calls), each panel in chromium saved as a PNG; the demo is removed afterwards.

.venv/bin/python scripts/screenshots.py [--amqp-url URL] [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from rabbit.urls import DEFAULT_AMQP_URL  # noqa: E402
from web.launcher import launch_lab  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--management-url", default=None)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lab = launch_lab(args.amqp_url, Path(tempfile.mkdtemp()) / "lab.log", args.management_url)
    base = lab.base_url
    token = uuid.uuid4().hex[:4]
    exchange, q_orange, q_lazy, rpc_queue = (
        f"demo.animals-{token}",
        f"orange-{token}",
        f"lazy-{token}",
        f"demo-rpc-{token}",
    )
    consumers: list[str] = []
    try:
        post = lambda path, body: requests.post(base + path, json=body, timeout=30)  # noqa: E731
        post("/api/exchanges", {"name": exchange, "type": "topic"})
        for queue, key in ((q_orange, "*.orange.*"), (q_lazy, "lazy.#")):
            post("/api/queues", {"name": queue, "auto_delete": False})
            post(
                "/api/bindings",
                {"source": exchange, "destination": queue, "destination_type": "queue", "routing_key": key},
            )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.goto(base + "/")
            page.locator("#broker-status[data-state=connected]").wait_for(timeout=10000)
            page.wait_for_timeout(1500)  # let every panel start and subscribe
            consumers = [post("/api/consumers", {"queue": q, "prefetch": 1}).json()["id"] for q in (q_orange, q_lazy)]
            for key, body in (
                ("quick.orange.rabbit", '{"colour": "orange", "n": 1}'),
                ("lazy.pink.elephant", "hi"),
                ("lazy.orange.fox", '{"both": true}'),
                ("quick.brown.fox", "nobody takes me"),
            ):
                post(
                    "/api/publish",
                    {
                        "exchange": exchange,
                        "routing_key": key,
                        "body": body,
                        "mandatory": True,
                        "properties": {
                            "content_type": "application/json" if body[0] == "{" else "text/plain",
                            "delivery_mode": 2,
                        },
                    },
                )
            post("/api/rpc/servers", {"count": 2, "queue": rpc_queue})
            for n in (10, 30, 90, 200):
                post("/api/rpc/call", {"n": n, "queue": rpc_queue})
            post("/api/rpc/burst", {"n": 25, "calls": 300, "concurrency": 16, "queue": rpc_queue})
            page.wait_for_timeout(1500)
            for tab in page.locator(".tab").all():
                name = tab.get_attribute("data-panel")
                tab.click()
                page.wait_for_timeout(800)
                if name == "topology":
                    page.select_option("#route-exchange", exchange)
                    page.fill("#route-key", "quick.orange.rabbit")
                    page.locator("#route-result .route-verdict").wait_for(timeout=10000)
                    page.wait_for_timeout(500)
                page.screenshot(path=str(out / f"screenshot-{name}.png"), full_page=True)
                print(f"saved {out / f'screenshot-{name}.png'}")
            browser.close()
    finally:
        for consumer in consumers:
            requests.delete(f"{base}/api/consumers/{consumer}", timeout=10)
        for queue in (q_orange, q_lazy, rpc_queue):
            requests.delete(f"{base}/api/queues/{queue}", timeout=10)
        requests.delete(f"{base}/api/exchanges/{exchange}", timeout=10)
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
