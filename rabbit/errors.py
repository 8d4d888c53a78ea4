"""Errors the AMQP layer reports, with the broker's own reply codes and texts (pure)."""

from __future__ import annotations

from typing import Any

# AMQP 0-9-1 reply codes (the spec's constants) and the names RabbitMQ prints with them.
REPLY_CODE_NAMES: dict[int, str] = {
    311: "CONTENT_TOO_LARGE",
    312: "NO_ROUTE",
    313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED",
    402: "INVALID_PATH",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
    506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED",
    541: "INTERNAL_ERROR",
}


class LabError(Exception):
    """An error with a stable machine-readable ``code`` and a human ``message``."""

    code = "LAB_ERROR"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidInput(LabError):
    """Input rejected before it reached the broker."""

    code = "INVALID"


class BrokerUnavailable(LabError):
    """The broker cannot be reached right now (it is down, restarting, or the connection was lost)."""

    code = "BROKER_DOWN"


class BrokerError(LabError):
    """The broker refused an operation: it closed the channel (or connection) with a reply code."""

    def __init__(self, reply_code: int, reply_text: str):
        self.reply_code = reply_code
        name = REPLY_CODE_NAMES.get(reply_code, f"REPLY_{reply_code}")
        super().__init__(reply_text or name, code=name, details={"reply_code": reply_code})

    @classmethod
    def from_pika(cls, exc: BaseException) -> BrokerError:
        """Build from pika's ChannelClosedByBroker / ConnectionClosedByBroker (``reply_code``, ``reply_text``)."""
        return cls(int(getattr(exc, "reply_code", 0) or 0), str(getattr(exc, "reply_text", "") or exc))
