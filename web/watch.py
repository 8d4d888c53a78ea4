"""The watch area (taps and the firehose trace): HTTP API and Socket.IO events (built in its own issue)."""

from __future__ import annotations

from flask import Blueprint, Flask

from web.lab import Lab

bp = Blueprint("watch", __name__)


def init_app(app: Flask, lab: Lab) -> None:
    app.register_blueprint(bp)
