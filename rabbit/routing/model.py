"""The engine's records: exchanges, bindings, matches, misses and the route result (and the JSON helpers)."""

from __future__ import annotations

import datetime as _dt
import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rabbit.errors import LabError

DEFAULT_EXCHANGE = ""
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")
DIRECT_REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."
HASH = "#"  # takes zero or more words
STAR = "*"  # takes exactly one word


class UnknownExchange(LabError):
    """The message is published to an exchange the topology does not hold (the broker says NOT_FOUND)."""

    code = "NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"no exchange '{name}' in the topology", details={"exchange": name})
        self.name = name


@dataclass(frozen=True)
class ExchangeInfo:
    name: str
    type: str  # "direct" | "fanout" | "topic" | "headers"
    arguments: Mapping[str, Any] = field(default_factory=dict)  # may hold "alternate-exchange"
    internal: bool = False

    @property
    def alternate(self) -> str | None:
        value = self.arguments.get("alternate-exchange") if self.arguments else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class BindingInfo:
    source: str  # exchange name
    destination: str
    destination_type: str  # "queue" | "exchange"
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    # Argument keys whose value a listing may have changed: the management API shows a void value as the string
    # "undefined" and sorts the keys of a nested table (the broker compares tables in their order).
    unclear: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        record = {
            "source": self.source,
            "destination": self.destination,
            "destination_type": self.destination_type,
            "routing_key": self.routing_key,
            "arguments": jsonable(dict(self.arguments or {})),
        }
        if self.unclear:
            record["arguments_unclear"] = list(self.unclear)
        return record


@dataclass(frozen=True)
class Match:
    binding: BindingInfo
    via: tuple[str, ...]
    explanation: dict[str, Any]
    lab: bool = False  # the destination is one of the lab's own queues (a tap's), not an application's

    @property
    def destination(self) -> str:
        return self.binding.destination

    @property
    def destination_type(self) -> str:
        return self.binding.destination_type

    def to_dict(self) -> dict[str, Any]:
        return {
            "binding": self.binding.to_dict(),
            "destination": self.destination,
            "destination_type": self.destination_type,
            "via": list(self.via),
            "explanation": self.explanation,
            "lab": self.lab,
        }


@dataclass(frozen=True)
class Miss:
    binding: BindingInfo
    via: tuple[str, ...]
    explanation: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"binding": self.binding.to_dict(), "via": list(self.via), "explanation": self.explanation}


@dataclass
class RouteResult:
    exchange: str
    queues: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    misses: list[Miss] = field(default_factory=list)
    alternates: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: str | None = None  # why the broker refuses the publish itself ("internal exchange")
    unknown: list[str] = field(default_factory=list)  # exchanges reached that exist but whose bindings are unknown
    lab_queues: list[str] = field(default_factory=list)  # the lab's own queues among ``queues`` (taps)
    caveats: list[str] = field(default_factory=list)  # what qualifies this prediction (also in ``notes``)
    topology_version: str | None = None  # set by the caller: which topology the prediction used
    misses_total: int | None = None  # set when only some misses are explained: how many bindings did not match
    near_misses: list[dict[str, Any]] | None = None  # set when asked for: the smallest changes that would match
    # The exchanges walked: (name, via, positions of the matched bindings in the index's by_source[name]).
    visited: list[tuple[str, tuple[str, ...], frozenset[int]]] = field(default_factory=list, repr=False)
    missed_count: int = 0  # bindings walked that did not match (explained or not)

    @property
    def routed(self) -> bool | None:
        """True: some queue takes it; False: none does (or the broker refuses it); None: the lab cannot tell."""
        if self.refused is not None:
            return False
        if self.queues:
            return True
        return None if self.unknown else False

    def caveat(self, text: str) -> None:
        if text not in self.caveats:
            self.caveats.append(text)
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "routed": self.routed,
            "queues": list(self.queues),
            "matches": [m.to_dict() for m in self.matches],
            "misses": [m.to_dict() for m in self.misses],
            "alternates": [dict(a) for a in self.alternates],
            "exchange": self.exchange,
            "notes": list(self.notes),
            "refused": self.refused,
            "unknown_bindings": list(self.unknown),
            "lab_queues": list(self.lab_queues),
            "caveats": list(self.caveats),
            "topology_version": self.topology_version,
        } | self._extras()

    def _extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if self.misses_total is not None:
            extras["misses_total"] = self.misses_total
        if self.near_misses is not None:
            extras["near_misses"] = [dict(n) for n in self.near_misses]
        return extras


def _quote(word: str) -> str:
    return f"'{word}'"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy of an AMQP field value (byte arrays as text, decimals and dates as strings)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
