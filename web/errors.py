"""JSON errors for the API: ``{"error": {"code", "message", "reply_code"?, "hint"?}}`` with a fitting HTTP status.

A broker refusal's ``message`` is the broker's text without the code's name it repeats, and ``hint`` says in one
line what to do (:func:`rabbit.errors.hint_for`)."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from rabbit.errors import BrokerError, LabError

HTTP_STATUS_BY_CODE = {
    "INVALID": 400,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "invalid": 400,
    "ACCESS_REFUSED": 403,
    "NOT_FOUND": 404,
    "PRECONDITION_FAILED": 409,
    "RESOURCE_LOCKED": 409,
    "BROKER_DOWN": 503,
    "BROKER_BLOCKED": 503,
    "MANAGEMENT_UNAVAILABLE": 503,
    # The RPC area (lowercase, as its issue names them): no reply in time, and an error reply from the server.
    "timeout": 504,
    "server_error": 502,
}


def http_status_for(error: LabError) -> int:
    status = HTTP_STATUS_BY_CODE.get(error.code)
    if status is not None:
        return status
    return 502 if isinstance(error, BrokerError) else 500


def error_response(error: LabError, status: int | None = None) -> tuple[Response, int]:
    return jsonify({"error": error.to_dict()}), status or http_status_for(error)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(LabError)
    def on_lab_error(error: LabError) -> tuple[Response, int]:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response | tuple[Response, int]:
        if not request.path.startswith("/api/"):
            return error.get_response()
        code = (error.name or "error").upper().replace(" ", "_")
        body = {"error": {"code": code, "message": error.description or error.name}}
        return jsonify(body), error.code or 500
