"""The lab's main link to the broker, its management API client, and the public status of both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.events import EventSink
from lab.settings import Settings
from rabbit.connection import BrokerLink
from rabbit.management import ManagementClient

STATUS_KEYS = (
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


class BrokerService:
    """Owns the main :class:`BrokerLink` (topology work, passive checks) and reports ``broker_status``.

    Other connections that publish (the traffic area's publisher) add a *blocked source*: a function that says why
    the broker blocks it (a memory or disk alarm), or None; the status shows the first such reason.
    """

    def __init__(self, settings: Settings, events: EventSink) -> None:
        self.settings = settings
        self.events = events
        self.link = BrokerLink(settings.amqp_url, name="rabbitlens", on_status=self.announce)
        self.management = ManagementClient(settings.management_url)
        self._blocked_sources: list[Callable[[], str | None]] = []

    def add_blocked_source(self, source: Callable[[], str | None]) -> None:
        self._blocked_sources.append(source)

    def status(self) -> dict[str, Any]:
        """The public ``broker`` object of health and ``broker_status`` (no secrets in it)."""
        status = self.link.status
        broker = {key: status.get(key) for key in STATUS_KEYS}
        broker["blocked"] = status.get("blocked") or next((b for b in (f() for f in self._blocked_sources) if b), None)
        return broker

    def announce(self, _status: dict[str, Any] | None = None) -> None:
        """Send ``broker_status`` to every listener (a connection's status changed: down, up, blocked...)."""
        self.events.emit("broker_status", self.status())

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()
