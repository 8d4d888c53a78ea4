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


def strip_code_name(reply_text: str, name: str) -> str:
    """The broker's text without the reply code's name it starts with (``NOT_FOUND - no exchange 'x'`` ->
    ``no exchange 'x'``): the code is shown once, beside the reply code."""
    text = reply_text.strip()
    for prefix in (f"{name} - ", f"{name}: ", f"{name} "):
        if text.startswith(prefix):
            return text[len(prefix) :].strip() or text
    return text


# What to do, by reply code and a phrase of the broker's text (first match wins; "" matches any text).
_HINTS: tuple[tuple[int, str, str], ...] = (
    (
        406,
        "inequivalent arg",
        "{what} exists with other flags or arguments: re-declare with the same flags, or delete {what} first",
    ),
    (406, "unknown delivery tag", "the message was already acked or its channel closed: settle each message once"),
    (406, "", "the broker's precondition failed: check the flags and arguments against what exists"),
    (404, "no exchange", "declare the exchange first, or check its name"),
    (404, "no queue", "declare the queue first, or check its name"),
    (404, "", "declare it first, or check the name"),
    (403, "reserved prefix", "names starting with amq. belong to the broker: choose another name"),
    (
        403,
        "internal exchange",
        "an internal exchange takes messages only from other exchanges: publish to one bound to it",
    ),
    (403, "default exchange", "the default exchange cannot be bound, unbound or deleted: use a named exchange"),
    (
        403,
        "",
        "the broker user lacks this permission on the vhost (rabbitmqctl set_permissions), or the name is the broker's",
    ),
    (405, "", "the queue is exclusive to another connection: use another name, or wait until that connection closes"),
    (530, "vhost", "the vhost does not exist: create it (rabbitmqctl add_vhost) or fix the URL"),
    (530, "", "the broker does not allow this operation here"),
    (320, "", "the broker closed the connection (shutdown or an operator); the lab reconnects by itself"),
    (501, "", "a name or table is larger than the broker's frame size: send a smaller one"),
    (506, "", "the broker is short of a resource (memory, disk, file descriptors): see its log"),
    (541, "", "the broker had an internal error: see its log"),
)


def hint_for(reply_code: int, reply_text: str = "") -> str | None:
    """One line of what to do about a broker refusal, or None when the lab has nothing useful to say."""
    text = reply_text.lower()
    what = "the queue" if "for queue" in text else "the exchange" if "for exchange" in text else "it"
    for code, phrase, hint in _HINTS:
        if code == reply_code and phrase in text:
            return hint.replace("{what}", what)
    return None


class BrokerBlocked(LabError):
    """The broker is blocking publishers (a memory or disk alarm, ``connection.blocked``): a publish now would
    wait until the alarm clears, so the lab refuses it at once."""

    code = "BROKER_BLOCKED"

    def __init__(self, reason: str):
        super().__init__(
            reason,
            details={"hint": "free memory or disk on the broker (or raise its limit); publish again once it clears"},
        )
        self.pending: Any = None  # the job still waiting for the alarm (a Future), when one is


class BrokerError(LabError):
    """The broker refused an operation: it closed the channel (or connection) with a reply code.

    ``message`` is the broker's text without the code's name it repeats; ``hint`` (in ``to_dict`` when there is
    one) says in one line what to do.
    """

    def __init__(self, reply_code: int, reply_text: str):
        self.reply_code = reply_code
        name = REPLY_CODE_NAMES.get(reply_code, f"REPLY_{reply_code}")
        self.reply_text = reply_text
        self.hint = hint_for(reply_code, reply_text)
        details: dict[str, Any] = {"reply_code": reply_code}
        if self.hint:
            details["hint"] = self.hint
        super().__init__(strip_code_name(reply_text, name) or name, code=name, details=details)

    def summary(self) -> str:
        """One line for logs and state texts: ``404 NOT_FOUND: no exchange 'x' in vhost '/'``."""
        return f"{self.reply_code} {self.code}: {self.message}"

    @classmethod
    def from_pika(cls, exc: BaseException) -> BrokerError:
        """Build from pika's ChannelClosedByBroker / ConnectionClosedByBroker (``reply_code``, ``reply_text``)."""
        return cls(int(getattr(exc, "reply_code", 0) or 0), str(getattr(exc, "reply_text", "") or exc))
