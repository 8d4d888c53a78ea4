"""The services one app instance owns (broker link, management client, live hub), kept on the Flask app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from rabbit.connection import BrokerLink
from rabbit.management import ManagementClient
from rabbit.urls import scrub, url_password
from web.live import LiveHub
from web.settings import Settings

EXTENSION_KEY = "rabbitlens"


@dataclass
class Lab:
    settings: Settings
    link: BrokerLink
    management: ManagementClient
    hub: LiveHub
    # Services of each area (topology, traffic, rpc), by name, and what to run when the app stops.
    services: dict[str, Any] = field(default_factory=dict)
    shutdown_hooks: list[Callable[[], None]] = field(default_factory=list)
    # Connections that publish (the publisher's link...): each says why the broker blocks it, or None.
    blocked_sources: list[Callable[[], str | None]] = field(default_factory=list)

    def broker_status(self) -> dict[str, Any]:
        """The public ``broker`` object of health and ``broker_status`` (no secrets in it)."""
        status = self.link.status
        keys = (
            "connected",
            "state",
            "url",
            "server_version",
            "error",
            "attempts",
            "since",
            "retry_at",
            "stuck",
            "recoveries",
        )
        broker = {key: status.get(key) for key in keys}
        broker["blocked"] = status.get("blocked") or next((b for b in (f() for f in self.blocked_sources) if b), None)
        return broker

    def broadcast_broker_status(self, _status: dict[str, Any] | None = None) -> None:
        """Send ``broker_status`` to every browser (a connection's status changed: down, up, blocked...)."""
        self.hub.broadcast("broker_status", self.broker_status())

    def secrets(self) -> list[str]:
        return [s for s in (url_password(self.settings.amqp_url), url_password(self.settings.management_url)) if s]

    def shutdown(self) -> None:
        """Run the areas' stop hooks (newest first) and close the broker link; a second call does nothing."""
        hooks, self.shutdown_hooks = self.shutdown_hooks, []
        for hook in reversed(hooks):
            try:
                hook()
            except Exception:
                logging.getLogger(__name__).exception("shutdown hook failed")
        self.link.stop()


def current_lab() -> Lab:
    return current_app.extensions[EXTENSION_KEY]


class RedactingFilter(logging.Filter):
    """Scrubs broker passwords out of every log record that passes a handler."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(app: Flask, secrets: list[str]) -> None:
    flt = RedactingFilter(secrets)
    for logger in (logging.getLogger(), app.logger):
        for handler in logger.handlers:
            handler.addFilter(flt)
