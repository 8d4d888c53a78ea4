"""Fibonacci for the RPC lab, and the wire format of its requests (pure, no I/O).

The wire format is the RPC tutorial's, so its clients in any language work unchanged: the request body is ``n``
as decimal ASCII text, the reply body is ``fib(n)`` as decimal text. Unlike the tutorial we compute by fast
doubling (O(log n) big-integer steps instead of exponential recursion) and refuse input we cannot or should not
compute, with a short reason that the server sends back instead of dying.
"""

from __future__ import annotations

import re

DEFAULT_MAX_N = 100_000
# The longest request body worth parsing: digits of any sane bound plus surrounding whitespace.
MAX_BODY_BYTES = 64
# Python refuses int <-> str conversions above 4300 digits by default; below this many bits str() is safe.
_STR_SAFE_BITS = 12_000
_DECIMAL = re.compile(r"[+-]?[0-9]+")


class FibRequestError(ValueError):
    """A request the server refuses; ``str(error)`` is the reason sent back to the client."""


def fib(n: int) -> int:
    """fib(0)=0, fib(1)=1, fib(n)=fib(n-1)+fib(n-2), exact, by fast doubling.

    With F(k) and F(k+1) known: F(2k) = F(k) * (2F(k+1) - F(k)) and F(2k+1) = F(k)^2 + F(k+1)^2.
    Walking the bits of n from the top gives F(n) in about log2(n) steps.
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"fib needs an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError("fib is defined here for n >= 0 only")
    a, b = 0, 1  # F(k), F(k+1) with k = the bits of n read so far
    for bit in bin(n)[2:]:
        c = a * ((b << 1) - a)  # F(2k)
        d = a * a + b * b  # F(2k+1)
        if bit == "1":
            a, b = d, c + d
        else:
            a, b = c, d
    return a


def to_decimal(value: int) -> str:
    """``str(value)`` without Python's 4300-digit conversion limit (divide and conquer on powers of ten)."""
    if value < 0:
        return "-" + to_decimal(-value)
    if value.bit_length() <= _STR_SAFE_BITS:
        return str(value)
    half = int(value.bit_length() * 0.30102999566398 / 2)  # about half the decimal digits
    high, low = divmod(value, 10**half)
    return to_decimal(high) + to_decimal(low).rjust(half, "0")


def check_n(n: int, max_n: int = DEFAULT_MAX_N) -> int:
    """``n`` if it is a whole number in 0..max_n, else :class:`FibRequestError` saying what is wrong."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise FibRequestError(f"n must be an integer, not {type(n).__name__}")
    if n < 0:
        raise FibRequestError(f"n must be >= 0 (got {n})")
    if n > max_n:
        raise FibRequestError(f"n must be <= {max_n} (got {n})")
    return n


def parse_request(body: bytes, max_n: int = DEFAULT_MAX_N) -> int:
    """The ``n`` of a request body (decimal ASCII text, whitespace around it allowed), or a clear refusal."""
    if len(body) > MAX_BODY_BYTES:
        raise FibRequestError(f"request body too large: {len(body)} bytes (at most {MAX_BODY_BYTES})")
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise FibRequestError("request body is not text: expected n as decimal ASCII digits") from None
    if not text:
        raise FibRequestError("empty request: expected n as decimal digits, e.g. 30")
    if not _DECIMAL.fullmatch(text):
        shown = text if len(text) <= 20 else text[:20] + "..."
        printable = "".join(ch if ch.isprintable() else "?" for ch in shown)
        raise FibRequestError(f"not an integer: {printable!r}")
    return check_n(int(text), max_n)


def answer(body: bytes, max_n: int = DEFAULT_MAX_N) -> tuple[int, str]:
    """Parse a request and compute its reply text: ``(n, decimal fib(n))``; raises :class:`FibRequestError`."""
    n = parse_request(body, max_n)
    return n, to_decimal(fib(n))
