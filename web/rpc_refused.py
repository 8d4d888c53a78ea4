"""Calls refused before anything is sent show in the RPC round-trip list: the ``rpc_refused`` event.

A ``POST /api/rpc/call`` that never reached the broker (a bad ``n`` or queue name, no server consuming the queue,
the broker down) leaves no ``rpc_request`` behind, so the page's round-trip list would not show it at all. After
such a request this emits ``rpc_refused``
``{"correlation_id": null, "n", "queue", "reply_mode", "status", "code", "reason", "time"}`` (``n`` and ``queue``
as given, as short text) and keeps it in the RPC timeline that a new page is sent. It reads the answer the route
already gave, so the RPC client itself is untouched.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, request

from lab.container import Lab
from web.live import LiveHub

CALL_ENDPOINT = "rpc.call"
REFUSED_STATUSES = (400, 503, 504)
SHOWN_CHARS = 64


def _short(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def refusal(status: int, answer: Any, asked: Any) -> dict[str, Any] | None:
    """The ``rpc_refused`` payload for a call answered ``status`` / ``answer`` (JSON) when ``asked`` (the request
    JSON), or None when the call was sent (a real timeout waited for a reply: its request is in the list already)."""
    if status not in REFUSED_STATUSES or not isinstance(answer, dict) or not isinstance(answer.get("error"), dict):
        return None
    error = answer["error"]
    if status == 504 and error.get("waited_ms") != 0:  # a timeout after sending, not "no server" at once
        return None
    asked = asked if isinstance(asked, dict) else {}
    return {
        "correlation_id": None,  # never sent: no correlation id was given out
        "n": _short(asked.get("n")),
        "queue": _short(asked.get("queue", "rpc_queue")),
        "reply_mode": _short(asked.get("reply_mode", "callback_queue")),
        "status": status,
        "code": error.get("code"),
        "reason": str(error.get("message") or "refused")[:500],
        "time": time.time(),
    }


def init_app(app: Flask, lab: Lab, hub: LiveHub) -> None:
    @app.after_request
    def report_refused_call(response: Response) -> Response:
        if request.endpoint != CALL_ENDPOINT or response.status_code not in REFUSED_STATUSES:
            return response
        try:  # the body was refused already, maybe for being too deep or not UTF-8: then n and queue are unknown
            asked = request.get_json(silent=True)
        except Exception:
            asked = None
        payload = refusal(response.status_code, response.get_json(silent=True), asked)
        if payload is not None:
            lab.rpc.record_refused(payload)
        return response
