"""What every connection owner of the lab shares, blocking (:mod:`rabbit.connection`) or asynchronous
(:mod:`rabbit.async_connection`): the connection parameters, plain reasons, shutting a stuck socket from outside,
and the registry of owners that health reads to say "degraded".
"""

from __future__ import annotations

import contextlib
import socket
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pika.exceptions as pex

from rabbit.reasons import plain_reason

STUCK_AFTER_S = 3.0  # an owner busy longer than this is reported as stuck (health turns "degraded")

# Every live connection owner of this process (links, the RPC client: anything with ``name`` and
# ``stuck_for()``), for health: one stuck owner anywhere makes the lab "degraded".
_OWNERS: weakref.WeakSet[Any] = weakref.WeakSet()


def register_owner(owner: Any) -> None:
    """Have ``owner`` (with a ``name`` and a ``stuck_for() -> float | None``) counted by :func:`stuck_links`."""
    _OWNERS.add(owner)


# Errors that mean "the connection is gone", as opposed to a channel error the broker reports.
CONNECTION_LOST = (
    pex.AMQPConnectionError,
    pex.ConnectionWrongStateError,
    pex.StreamLostError,
    OSError,
)


@contextlib.contextmanager
def failures_reported(report: Callable[[Exception], None]) -> Iterator[None]:
    """Around the body of a pika callback: a lost connection goes up (its owner reconnects); any other exception
    goes to ``report`` and no further, since an exception let out of the callback would end the link's owner."""
    try:
        yield
    except CONNECTION_LOST:
        raise
    except Exception as exc:
        report(exc)


def connection_parameters(url: str, name: str, *, heartbeat: int | None = None) -> pika.URLParameters:
    """The lab's parameters for a connection to ``url``: one attempt, a 5 s socket timeout, and a name the broker
    shows (``rabbitmqctl list_connections client_properties``, the management UI)."""
    params = pika.URLParameters(url)
    if heartbeat is not None:
        params.heartbeat = heartbeat
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name, "product": "RabbitLens"}
    return params


def describe_error(exc: BaseException, url: str = "") -> str:
    """A short plain text for a connection failure ("connection refused at 127.0.0.1:5999", "authentication
    failed for user 'guest'"...; pika's own reprs are class names): :func:`rabbit.reasons.plain_reason`."""
    return plain_reason(exc, url)


def stuck_links() -> list[dict[str, Any]]:
    """The connection owners of this process that are stuck now: ``[{"name", "stuck_for_s"}]``."""
    found = []
    for link in list(_OWNERS):
        stuck_for = link.stuck_for()
        if stuck_for is not None:
            found.append({"name": link.name, "stuck_for_s": round(stuck_for, 1)})
    return found


def abort_socket(conn: pika.BlockingConnection | pika.SelectConnection | None) -> bool:
    """Shut the connection's socket down from any thread (no pika state is touched): a pika call blocked on it
    sees end of stream and raises ``StreamLostError`` in its own thread (an asynchronous connection reports it
    to its close callback). True if there was a socket to shut."""
    transport = getattr(getattr(conn, "_impl", conn), "_transport", None)
    sock = getattr(transport, "_sock", None)
    if sock is None:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True
