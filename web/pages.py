"""The page itself, and its icon."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, send_from_directory

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html")


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on their own; answer with the page's SVG icon instead of a 404."""
    response = send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)
    return response
