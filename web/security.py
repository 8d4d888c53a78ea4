"""Who may use the lab: an access token when one is set, and same-origin browsers only.

- ``RABBITLENS_TOKEN`` set: every ``/api/`` request and every Socket.IO connection needs it, as
  ``Authorization: Bearer <token>``, an ``X-RabbitLens-Token`` header, or the session cookie that
  ``POST /api/session`` sets after the page asked for the token once.
- State-changing requests that carry an ``Origin`` header must come from the app's own origin (no CSRF from
  other sites); Socket.IO keeps python-engineio's same-origin default (no ``*``).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, jsonify, request, session

from web.api import ApiModel, api
from web.lab import current_lab
from web.settings import Settings

bp = Blueprint("security", __name__)
OPEN_PATHS = ("/api/session",)
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


class SessionIn(ApiModel):
    token: str


def token_matches(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-RabbitLens-Token")


def is_authorized(settings: Settings, auth: Any = None) -> bool:
    """Whether this request (or Socket.IO connect with ``auth``) may use the lab."""
    if not settings.token:
        return True
    if session.get("authorized") is True:
        return True
    if isinstance(auth, dict) and token_matches(auth.get("token"), settings.token):
        return True
    return token_matches(presented_token(), settings.token)


def same_origin(origin: str, host_url: str) -> bool:
    a, b = urlsplit(origin), urlsplit(host_url)
    return (a.scheme, a.hostname, a.port or _default_port(a.scheme)) == (
        b.scheme,
        b.hostname,
        b.port or _default_port(b.scheme),
    )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def init_security(app: Flask, settings: Settings) -> None:
    @app.before_request
    def guard() -> tuple[Response, int] | None:
        origin = request.headers.get("Origin")
        if request.method in STATE_CHANGING and origin and not same_origin(origin, request.host_url):
            return _error(403, "FORBIDDEN_ORIGIN", f"requests from {origin} are not accepted: same origin only")
        if request.path.startswith("/api/") and request.path not in OPEN_PATHS and not is_authorized(settings):
            return _error(401, "UNAUTHORIZED", "this lab needs its access token (RABBITLENS_TOKEN)")
        return None

    app.register_blueprint(bp)


@api.route(bp, "/api/session", "GET", summary="Whether a token is required and this browser has given it")
def session_state() -> dict[str, bool]:
    settings = current_lab().settings
    return {"token_required": bool(settings.token), "authorized": is_authorized(settings)}


@api.route(
    bp,
    "/api/session",
    "POST",
    body=SessionIn,
    summary="Give the access token once; the session cookie keeps it",
    responses={200: "Authorized", 401: "Wrong token"},
)
def open_session(body: SessionIn) -> dict[str, bool] | tuple[Response, int]:
    settings = current_lab().settings
    if settings.token and not token_matches(body.token, settings.token):
        return _error(401, "UNAUTHORIZED", "wrong access token")
    session["authorized"] = True
    return {"token_required": bool(settings.token), "authorized": True}
