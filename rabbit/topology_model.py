"""The topology's data model, pure: the JSON records of exchanges, queues and bindings, the snapshot shape, the
:class:`Registry` of what the lab declared (all AMQP can tell without the management API) and the routing
engine's inputs from a snapshot."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_EXCHANGE = ""
# Exchanges every RabbitMQ vhost has (amq.rabbitmq.trace is internal and only there with tracing on).
STANDARD_EXCHANGES: tuple[tuple[str, str], ...] = (
    ("", "direct"),
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
    ("amq.topic", "topic"),
)
STANDARD_EXCHANGE_NAMES = frozenset(name for name, _ in STANDARD_EXCHANGES)
MANAGEMENT_HINT = (
    "the management API shows every exchange, queue and binding of the vhost: turn its plugin on with "
    "`rabbitmq-plugins enable rabbitmq_management`"
)
DIRECT_REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."


# --------------------------------------------------------------------------- records (the JSON shapes)
def exchange_record(
    name: str,
    type: str,
    *,
    durable: bool = False,
    auto_delete: bool = False,
    internal: bool = False,
    arguments: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type,
        "durable": bool(durable),
        "auto_delete": bool(auto_delete),
        "internal": bool(internal),
        "arguments": dict(arguments or {}),
    }


def queue_record(
    name: str,
    *,
    durable: bool = False,
    exclusive: bool = False,
    auto_delete: bool = False,
    arguments: Mapping[str, Any] | None = None,
    messages: int = 0,
    consumers: int = 0,
) -> dict[str, Any]:
    return {
        "name": name,
        "durable": bool(durable),
        "exclusive": bool(exclusive),
        "auto_delete": bool(auto_delete),
        "arguments": dict(arguments or {}),
        "messages": int(messages or 0),
        "consumers": int(consumers or 0),
    }


def binding_record(
    source: str,
    destination: str,
    destination_type: str = "queue",
    routing_key: str = "",
    arguments: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "source": source,
        "destination": destination,
        "destination_type": destination_type,
        "routing_key": routing_key,
        "arguments": dict(arguments or {}),
    }


def binding_key(binding: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """What makes a binding unique on the broker: both ends, the key and the arguments (nested tables in their
    order: the broker tells ``{"k": 1, "j": 2}`` from ``{"j": 2, "k": 1}``)."""
    args = json.dumps(sorted((binding.get("arguments") or {}).items()), default=str)
    return (binding["source"], binding["destination"], binding["destination_type"], binding["routing_key"], args)


def standard_exchanges() -> list[dict[str, Any]]:
    return [exchange_record(name, kind, durable=True) for name, kind in STANDARD_EXCHANGES]


def snapshot_of(
    source: str, exchanges: Iterable[dict[str, Any]], queues: Iterable[dict[str, Any]], bindings: Iterable[dict]
) -> dict[str, Any]:
    """The ``GET /api/topology`` object, sorted so that equal topologies compare equal."""
    return {
        "source": source,
        "exchanges": sorted(exchanges, key=lambda e: e["name"]),
        "queues": sorted(queues, key=lambda q: q["name"]),
        "bindings": sorted(bindings, key=binding_key),
    }


def topology_version(snapshot: Mapping[str, Any]) -> str:
    """A short fingerprint of what routing depends on (exchanges, queue names, bindings; not the counts)."""
    shape = [
        [
            [e["name"], e["type"], e.get("internal", False), sorted(e.get("arguments", {}).items())]
            for e in snapshot["exchanges"]
        ],
        sorted(q["name"] for q in snapshot["queues"]),
        sorted(binding_key(b) for b in snapshot["bindings"]),
    ]
    return hashlib.blake2s(json.dumps(shape, default=str).encode("utf-8"), digest_size=6).hexdigest()


# --------------------------------------------------------------------------- what the lab declared
@dataclass
class Registry:
    """What this lab declared (used when the management API is absent). Not thread-safe on its own."""

    exchanges: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    bindings: dict[tuple, dict[str, Any]] = field(default_factory=dict)

    def add_exchange(self, record: dict[str, Any]) -> None:
        self.exchanges[record["name"]] = record

    def add_queue(self, record: dict[str, Any]) -> None:
        self.queues[record["name"]] = record

    def add_binding(self, record: dict[str, Any]) -> None:
        self.bindings[binding_key(record)] = record

    def remove_binding(self, record: Mapping[str, Any]) -> None:
        self.bindings.pop(binding_key(record), None)

    def remove_exchange(self, name: str) -> None:
        """An exchange goes with every binding from or to it (as on the broker)."""
        self.exchanges.pop(name, None)
        self._drop_bindings(
            lambda b: b["source"] == name or (b["destination_type"] == "exchange" and b["destination"] == name)
        )

    def remove_queue(self, name: str) -> None:
        self.queues.pop(name, None)
        self._drop_bindings(lambda b: b["destination_type"] == "queue" and b["destination"] == name)

    def purge_queue(self, name: str) -> None:
        if name in self.queues:
            self.queues[name]["messages"] = 0

    def _drop_bindings(self, doomed: Callable[[dict[str, Any]], bool]) -> None:
        for key in [k for k, b in self.bindings.items() if doomed(b)]:
            del self.bindings[key]

    def snapshot(self) -> dict[str, Any]:
        exchanges = {e["name"]: e for e in standard_exchanges()}
        exchanges.update(self.exchanges)
        return snapshot_of(
            "lab",
            [dict(e) for e in exchanges.values()],
            [dict(q) for q in self.queues.values()],
            [dict(b) for b in self.bindings.values()],
        )


# --------------------------------------------------------------------------- the routing engine's inputs
def routing_inputs(snapshot: Mapping[str, Any]) -> tuple[list[Any], list[Any], list[str]]:
    """``(exchanges, bindings, queue names)`` for :func:`rabbit.routing.route` from a snapshot."""
    from rabbit.routing import BindingInfo, ExchangeInfo

    exchanges = [
        ExchangeInfo(e["name"], e["type"], arguments=dict(e.get("arguments") or {}), internal=bool(e.get("internal")))
        for e in snapshot["exchanges"]
    ]
    bindings = [
        BindingInfo(
            b["source"],
            b["destination"],
            b["destination_type"],
            routing_key=b.get("routing_key", ""),
            arguments=dict(b.get("arguments") or {}),
            unclear=tuple(b.get("arguments_unclear") or ()),
        )
        for b in snapshot["bindings"]
    ]
    return exchanges, bindings, [q["name"] for q in snapshot["queues"]]
