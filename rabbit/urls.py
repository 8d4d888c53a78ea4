"""Broker addresses: parsing, redaction and the management URL that goes with an AMQP URL (pure)."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_MANAGEMENT_PORT = 15672


def redact_url(url: str) -> str:
    """Return ``url`` without its password: ``amqp://guest@host:5672/%2F``.

    The user name stays (it helps to see *who* the lab connects as); the password never leaves the server.
    """
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.username:
        netloc = f"{quote(unquote(parts.username), safe='')}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_password(url: str) -> str | None:
    """The password in ``url`` (decoded), or None: used to scrub it from logs and messages."""
    password = urlsplit(url).password
    return unquote(password) if password else None


def vhost_of(amqp_url: str) -> str:
    """The virtual host an AMQP URL names (``/`` when the path is empty, as pika does)."""
    path = urlsplit(amqp_url).path
    if path in ("", "/"):
        return "/"
    return unquote(path[1:])


def management_url_for(amqp_url: str, port: int = DEFAULT_MANAGEMENT_PORT) -> str:
    """The management HTTP API base that goes with ``amqp_url``: same host and credentials, ``port``."""
    parts = urlsplit(amqp_url)
    scheme = "https" if parts.scheme == "amqps" else "http"
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    userinfo = ""
    if parts.username:
        userinfo = parts.username
        if parts.password is not None:
            userinfo += f":{parts.password}"
        userinfo += "@"
    return urlunsplit((scheme, f"{userinfo}{host}:{port}", "", "", ""))


def scrub(text: str, secrets: list[str]) -> str:
    """Replace every secret in ``text`` by ``***`` (longest first, so overlapping secrets all go)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, "***")
    return text
