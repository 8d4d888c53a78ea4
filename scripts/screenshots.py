"""Refresh the README's screenshots: start a lab on the local broker, open each panel in chromium, save PNGs.

.venv/bin/python scripts/screenshots.py [--amqp-url URL] [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from rabbit.urls import DEFAULT_AMQP_URL  # noqa: E402
from tests.conftest import launch_lab  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--management-url", default=None)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lab = launch_lab(args.amqp_url, Path(tempfile.mkdtemp()) / "lab.log", args.management_url)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(lab.base_url + "/")
            page.locator("#broker-status[data-state=connected]").wait_for(timeout=10000)
            for tab in page.locator(".tab").all():
                name = tab.get_attribute("data-panel")
                tab.click()
                page.wait_for_timeout(800)
                page.screenshot(path=str(out / f"screenshot-{name}.png"))
                print(f"saved {out / f'screenshot-{name}.png'}")
            browser.close()
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
