"""``GET /api/health`` and the ``broker_status`` event."""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

from flask import Blueprint

from rabbit.connection import stuck_links
from web.api import api
from web.lab import current_hub, current_lab

bp = Blueprint("health", __name__)


@api.route(bp, "/api/health", "GET", summary="Broker connection and management API availability")
def health() -> dict[str, Any]:
    broker_service = current_lab().broker
    broker = broker_service.status()
    stuck = stuck_links()  # any connection owner of the lab (main link, publisher, consumers, taps, trace)
    return {
        "status": "ok" if broker["connected"] and not broker["blocked"] and not stuck else "degraded",
        "broker": broker,
        "stuck": stuck,
        "management": broker_service.management.available(),
    }


def process_stats() -> dict[str, Any]:
    """Resource figures of this server process (for leak checks and the soak benchmark)."""
    rss_kib = 0
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = -1
    try:
        import greenlet

        greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and not obj.dead)
    except ImportError:
        greenlets = 0
    return {
        "pid": os.getpid(),
        "rss_bytes": rss_kib * 1024,
        "open_fds": open_fds,
        "threads": threading.active_count(),
        "greenlets": greenlets,
    }


@api.route(bp, "/api/stats", "GET", summary="Process figures: RSS, open file descriptors, threads, greenlets")
def stats() -> dict[str, Any]:
    return {"process": process_stats(), "broker": current_lab().broker.status(), "live": current_hub().stats()}
