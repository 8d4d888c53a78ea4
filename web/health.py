"""``GET /api/health`` and the ``broker_status`` event."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from web.api import api
from web.lab import current_lab

bp = Blueprint("health", __name__)


@api.route(bp, "/api/health", "GET", summary="Broker connection and management API availability")
def health() -> dict[str, Any]:
    lab = current_lab()
    broker = lab.broker_status()
    return {
        "status": "ok" if broker["connected"] else "degraded",
        "broker": broker,
        "management": lab.management.available(),
    }
