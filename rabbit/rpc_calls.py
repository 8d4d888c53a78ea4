"""One RPC call, pure: the wire's names, what a request carries, and what its result or error looks like.

The client (:mod:`rabbit.rpc_client`) and its bursts (:mod:`rabbit.rpc_burst`) build every result and event
from these, so a call answered one way or another always has the same shape.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rabbit.errors import BrokerUnavailable, LabError
from rabbit.fib import fib

CALLBACK_QUEUE = "callback_queue"
DIRECT_REPLY_TO = "direct_reply_to"
REPLY_MODES = (CALLBACK_QUEUE, DIRECT_REPLY_TO)
DIRECT_REPLY_QUEUE = "amq.rabbitmq.reply-to"
SERVER_HEADER = "x-rpc-server"
EVENT_TEXT_LIMIT = 120  # characters of a reply body put into an event (fib(100000) has 20899 digits)
NOT_AN_INTEGER = "not an exact integer: the server used floating point"
FIRST_ROUNDED_FIB_N = 79  # fib(79) > 2**53: from here on a double cannot hold fib(n) exactly
LARGEST_DOUBLE_FIB_N = 1476  # fib(1477) overflows a double (Infinity)

EventSink = Callable[[str, dict[str, Any]], None]


class RpcTimeout(LabError):
    """No reply in time (``details``: ``queue``, ``consumers``, ``timeout_s``)."""

    code = "timeout"


class RpcServerError(LabError):
    """The server replied with an ``error`` header: its message is ours."""

    code = "server_error"


def shorten(text: str, limit: int = EVENT_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def expiration_for(timeout_s: float) -> str:
    """The AMQP ``expiration`` (whole milliseconds, as text) of a request that nobody waits for after ``timeout_s``."""
    return str(max(1, math.ceil(timeout_s * 1000)))


def reply_problem(text: str, n: int | None = None) -> str | None:
    """Why a reply body is not a fib result (an exact decimal integer), or None when it is one.

    A tutorial server written with floating point (the Node one) answers fib(1000) as ``4.346655768693743e+208``
    and fib(1500) as ``Infinity``: those are flagged, never shown as the result. Below fib(1477) (the largest a
    double holds) an integer-looking reply is also checked against the exact value when ``n`` is known: doubles
    round from fib(79) up, so Node's fib(80) reads ``23416728348467684`` (exact: ...685).
    """
    stripped = text.strip()
    if stripped.isascii() and stripped.lstrip("-").isdigit():
        if n is None or not 0 <= n <= LARGEST_DOUBLE_FIB_N:
            return None
        exact = str(fib(n))
        if stripped == exact:
            return None
        if n >= FIRST_ROUNDED_FIB_N:
            return NOT_AN_INTEGER
        return f"wrong reply: fib({n}) is {exact}"
    lowered = stripped.lower()
    if lowered.lstrip("+-") in ("infinity", "inf", "nan") or _looks_like_float(lowered):
        return NOT_AN_INTEGER
    return "not an exact integer: the reply is not a decimal number"


def _looks_like_float(text: str) -> bool:
    if not text.isascii():  # float() also takes other scripts' digits; a server's floats are ASCII
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def decode_header(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass
class Call:
    """A request on its way: what to send and whom to tell."""

    body: bytes
    n: int | None
    queue: str
    reply_mode: str
    timeout_s: float
    on_done: Callable[[dict[str, Any]], None]
    report: bool = True
    consumers: int | None = None
    correlation_id: str | None = None
    # The request's AMQP expiration (ms as text): the broker drops it unread once nobody waits for the reply.
    expiration: str | None = None


def error_result(request: Call, code: str, message: str) -> dict[str, Any]:
    return {
        "correlation_id": request.correlation_id,
        "n": request.n,
        "queue": request.queue,
        "reply_mode": request.reply_mode,
        "error": {"code": code, "message": message, "timeout_s": request.timeout_s, "queue": request.queue},
    }


def no_server_result(request: Call, consumers: int | None) -> dict[str, Any]:
    if consumers is None:
        text = f"queue {request.queue!r} does not exist: no server is running, nothing would answer"
    else:
        text = f"no server is consuming from {request.queue!r} (0 consumers): nothing would answer"
    result = error_result(request, "timeout", text)
    result["error"].update(consumers=consumers or 0, queue_exists=consumers is not None, waited_ms=0)
    return result


def event_of(result: dict[str, Any]) -> dict[str, Any]:
    error = result["error"]
    return {
        "correlation_id": result.get("correlation_id"),
        "n": result.get("n"),
        "queue": result.get("queue"),
        "reply_mode": result.get("reply_mode"),
        "code": error["code"],
        "message": error["message"],
        "server": error.get("server"),
        "latency_ms": error.get("latency_ms"),
        "consumers": error.get("consumers"),
        "timeout_s": error.get("timeout_s"),
        "time": time.time(),
    }


def as_error(result: dict[str, Any]) -> LabError:
    error = dict(result["error"])
    code = error.pop("code")
    message = error.pop("message")
    if code == "timeout":
        return RpcTimeout(message, details={**error, "correlation_id": result.get("correlation_id")})
    if code == "server_error":
        return RpcServerError(message, details={**error, "correlation_id": result.get("correlation_id")})
    if code == "BROKER_DOWN":
        return BrokerUnavailable(message)
    return LabError(message, code=code, details=error)
