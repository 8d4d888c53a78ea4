"""The page itself, and its icon."""

from __future__ import annotations

import sys
from functools import cache

from flask import Blueprint, Response, current_app, render_template, send_from_directory

from rabbit.fib import DEFAULT_MAX_N, fib, to_decimal

bp = Blueprint("pages", __name__)

# Python 3.11+ refuses int() of a decimal string longer than this by default (sys.set_int_max_str_digits).
PYTHON_INT_DIGITS = getattr(sys.int_info, "default_max_str_digits", 4300)


@cache
def first_unreadable_n(digits: int = PYTHON_INT_DIGITS) -> int:
    """The smallest n whose fib(n) has more than ``digits`` decimal digits (20578 for Python's 4300)."""
    low, high = 0, 1
    while len(to_decimal(fib(high))) <= digits:
        low, high = high, high * 2
    while high - low > 1:  # fib grows: the digit count is monotonic in n
        middle = (low + high) // 2
        if len(to_decimal(fib(middle))) > digits:
            high = middle
        else:
            low = middle
    return high


@bp.get("/")
def index() -> str:
    return render_template(
        "index.html",
        fib_max_n=DEFAULT_MAX_N,
        python_int_digits=PYTHON_INT_DIGITS,
        python_unreadable_n=first_unreadable_n(),
    )


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on their own; answer with the page's SVG icon instead of a 404."""
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)
