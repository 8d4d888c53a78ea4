"""Why a connection failed, in plain words, and pika's own connection noise kept at debug level (pure but for
the logging set-up).

pika reports a refused TCP connection as ``AMQPConnectionError(AMQPConnectorSocketConnectError(
ConnectionRefusedError(111, ...)))`` and logs six ERROR lines and a traceback for it, on every attempt.
:func:`plain_reason` digs out what happened and says it the way a person would ("connection refused at
127.0.0.1:5999", "authentication failed for user 'guest'", "vhost 'x' does not exist", "name does not resolve:
rabbit.example"); :func:`quiet_pika_logs` turns pika's lines into debug records, so the lab's own one line per
change of state is what the log shows.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pika.exceptions as pex
from pika.adapters.utils.connection_workflow import AMQPConnectorStackTimeout

from rabbit.errors import REPLY_CODE_NAMES, strip_code_name

__all__ = ["blocked_text", "describe_url", "plain_reason", "quiet_pika_logs"]

# The reasons RabbitMQ gives in connection.blocked, and what the lab calls them.
_ALARMS = {"low on memory": "memory alarm", "low on disk": "disk alarm", "low on free disk space": "disk alarm"}


def blocked_text(reason: str | bytes | None) -> str:
    """What the lab says while the broker blocks publishers: "the broker is blocking publishers: memory alarm"."""
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    said = (reason or "").strip()
    return f"the broker is blocking publishers: {_ALARMS.get(said.lower(), said or 'an alarm')}"


def describe_url(url: str) -> tuple[str, str, str]:
    """(``host:port``, user, vhost) of an AMQP URL, with the AMQP defaults for what it leaves out."""
    try:
        parts = urlsplit(url)
        tls = parts.scheme == "amqps"
        host = parts.hostname or "localhost"
        port = parts.port or (5671 if tls else 5672)
        user = unquote(parts.username) if parts.username is not None else "guest"
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        vhost = unquote(path) if path else "/"
    except ValueError:
        return "the broker", "guest", "/"
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return where, user, vhost


def _chain(exc: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """``exc`` and the exceptions pika wrapped in it (its args, a workflow's list, causes), outermost first."""
    if depth > 8:
        return
    yield exc
    inner: list[BaseException] = [a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]
    inner += [e for e in (getattr(exc, "exceptions", None) or ()) if isinstance(e, BaseException)]
    for attr in ("exception", "__cause__"):
        value = getattr(exc, attr, None)
        if isinstance(value, BaseException):
            inner.append(value)
    for item in inner:
        yield from _chain(item, depth + 1)


def plain_reason(exc: BaseException, url: str) -> str:
    """Why a connection to ``url`` failed or ended, in plain words (no exception class names when the lab can
    say better)."""
    where, user, vhost = describe_url(url) if url else ("the broker", "guest", "/")
    host = where.rsplit(":", 1)[0].strip("[]")
    for item in _chain(exc):
        text = str(getattr(item, "reply_text", "") or "")
        code = getattr(item, "reply_code", None)
        lowered = (text or str(item)).lower()
        if isinstance(item, pex.ProbableAuthenticationError | pex.AuthenticationError) or (
            code == 403 and "login was refused" in lowered
        ):
            return f"authentication failed for user '{user}'"
        if isinstance(item, pex.ProbableAccessDeniedError) or (code == 530 and "vhost" in lowered):
            if "not found" in lowered:
                return f"vhost '{vhost}' does not exist"
            return f"user '{user}' may not use vhost '{vhost}'"
        if code == 403 and "access to vhost" in lowered:
            return f"user '{user}' may not use vhost '{vhost}'"
        if isinstance(item, ConnectionRefusedError):
            return f"connection refused at {where}"
        if isinstance(item, socket.gaierror):
            return f"name does not resolve: {host}"
        if isinstance(item, TimeoutError | AMQPConnectorStackTimeout):
            return f"no answer from {where} in time"
        if isinstance(item, ConnectionResetError):
            return f"connection reset by {where}"
        if isinstance(item, pex.ConnectionClosedByBroker):
            name = REPLY_CODE_NAMES.get(item.reply_code, f"REPLY_{item.reply_code}")
            said = strip_code_name(str(item.reply_text), name)
            return f"closed by the broker: {item.reply_code} {name}: {said}"
        if isinstance(item, pex.IncompatibleProtocolError):
            return f"{where} closed the connection during the AMQP handshake (is it a RabbitMQ port?)"
        if isinstance(item, pex.StreamLostError):
            return f"connection to {where} lost ({str(item) or 'end of stream'})"
        if isinstance(item, OSError) and item.strerror:
            return f"{item.strerror[0].lower()}{item.strerror[1:]} at {where}"
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name


class _DemoteToDebug(logging.Filter):
    """pika's records become DEBUG records, kept only when the ``pika`` logger is set to show debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("pika").isEnabledFor(logging.DEBUG)


_demote = _DemoteToDebug()
PIKA_LOGGERS = (
    "pika",
    "pika.adapters.base_connection",
    "pika.adapters.blocking_connection",
    "pika.adapters.select_connection",
    "pika.adapters.utils.connection_workflow",
    "pika.adapters.utils.io_services_utils",
    "pika.adapters.utils.selector_ioloop_adapter",
    "pika.channel",
    "pika.connection",
    "pika.heartbeat",
)


def quiet_pika_logs() -> None:
    """Send pika's own log lines (six ERRORs and a traceback per refused connection attempt) to debug level:
    the lab logs one plain line per change of state itself. ``logging.getLogger("pika").setLevel(logging.DEBUG)``
    brings them back."""
    for name in PIKA_LOGGERS:
        logger = logging.getLogger(name)
        if _demote not in logger.filters:
            logger.addFilter(_demote)
