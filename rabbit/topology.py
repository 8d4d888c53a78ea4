"""Declare, delete, purge and list exchanges, queues and bindings on the broker (knows nothing of the web).

Two ways to see a virtual host:
- with the management API: everything in the vhost, whoever declared it (``source: "management"``);
- without it, AMQP cannot list anything, so the lab keeps a :class:`Registry` of what *it* declared and checks
  each entry with passive declares (which also give exact message and consumer counts); ``source: "lab"``.

All broker work goes through ``link.call(fn)`` (see :class:`rabbit.connection.BrokerLink`): a broker error comes
back as :class:`BrokerError` and the link replaces the closed channel, so the next operation just works.
Every change the lab makes is reported to the injected ``on_change()``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from rabbit.errors import LabError
from rabbit.topology_management import MIRRORING_REMOVED, from_management, with_exact_arguments
from rabbit.topology_model import (
    DEFAULT_EXCHANGE,
    DIRECT_REPLY_TO_PREFIX,
    MANAGEMENT_HINT,
    STANDARD_EXCHANGE_NAMES,
    STANDARD_EXCHANGES,
    Registry,
    binding_key,
    binding_record,
    exchange_record,
    queue_record,
    routing_inputs,
    snapshot_of,
    standard_exchanges,
    topology_version,
)
from rabbit.topology_probe import _bindings_unknown, _column, _missing, probe

__all__ = [
    "DEFAULT_EXCHANGE",
    "DIRECT_REPLY_TO_PREFIX",
    "MANAGEMENT_HINT",
    "MIRRORING_REMOVED",
    "STANDARD_EXCHANGES",
    "STANDARD_EXCHANGE_NAMES",
    "Link",
    "Management",
    "Registry",
    "Topology",
    "binding_key",
    "binding_record",
    "exchange_record",
    "from_management",
    "probe",
    "queue_record",
    "routing_inputs",
    "snapshot_of",
    "standard_exchanges",
    "topology_version",
    "with_exact_arguments",
]

log = logging.getLogger(__name__)


class Link(Protocol):
    def call(self, fn: Callable[[Any], Any], timeout: float = ...) -> Any: ...


class Management(Protocol):
    def available(self, *, refresh: bool = False) -> bool: ...

    def get(self, path: str, **params: Any) -> Any: ...


# --------------------------------------------------------------------------- the service
class Topology:
    """The lab's topology operations on one broker link, with an optional management client.

    ``on_change()`` is called after every successful change the lab makes (the web layer then pushes the new
    snapshot to the browsers).
    """

    def __init__(
        self,
        link: Link,
        management: Management | None = None,
        *,
        vhost: str = "/",
        on_change: Callable[[], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.link = link
        self.management = management
        self.vhost = vhost
        self.registry = Registry()
        self._lock = threading.Lock()
        self._on_change = on_change
        self._timeout = timeout
        self._cached: tuple[float, dict[str, Any]] | None = None
        # The lab's own bindings that are not in the registry (a tap's): () -> [binding record + "lab": "tap"].
        self.lab_bindings: Callable[[], list[dict[str, Any]]] | None = None
        self._probed: dict[tuple[str, str], tuple[float, bool]] = {}  # (kind, name) -> (when, exists)
        self._versioned: tuple[Mapping[str, Any], str] | None = None
        self._indexed: tuple[tuple[str, str], Any] | None = None  # ((version, taps), RoutingIndex)

    # ------------------------------------------------------------- helpers
    def _call(self, fn: Callable[[Any], Any]) -> Any:
        # Right after start the link waits a little for its first connection itself (BrokerLink.call).
        return self.link.call(fn, timeout=self._timeout)

    def _changed(self) -> None:
        self._cached = None
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("topology change callback failed")

    def _record(self, update: Callable[[Registry], Any]) -> None:
        """Apply ``update`` to the registry (under the lock), then report the change."""
        with self._lock:
            update(self.registry)
        self._changed()

    def management_available(self) -> bool:
        return self.management is not None and self.management.available()

    # ------------------------------------------------------------- exchanges
    def declare_exchange(
        self,
        name: str,
        type: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        record = exchange_record(
            name, type, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments
        )
        self._call(
            lambda ch: ch.exchange_declare(
                exchange=name,
                exchange_type=type,
                durable=durable,
                auto_delete=auto_delete,
                internal=internal,
                arguments=dict(arguments or {}),
            )
        )
        self._record(lambda registry: registry.add_exchange(record))
        return record

    def delete_exchange(self, name: str) -> None:
        """Delete ``name``; NOT_FOUND if it does not exist (RabbitMQ's own delete is silent about that)."""

        def work(ch: Any) -> None:
            ch.exchange_declare(exchange=name, passive=True)
            ch.exchange_delete(exchange=name)

        self._call(work)
        self._record(lambda registry: registry.remove_exchange(name))

    # ------------------------------------------------------------- queues
    def declare_queue(
        self,
        name: str = "",
        *,
        durable: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Declare a queue (``""``: the broker names it). Never exclusive: an exclusive queue would die with the
        lab's channel's connection and could not be used by any other connection."""
        ok = self._call(
            lambda ch: ch.queue_declare(
                queue=name, durable=durable, exclusive=False, auto_delete=auto_delete, arguments=dict(arguments or {})
            )
        )
        record = queue_record(
            ok.method.queue,
            durable=durable,
            auto_delete=auto_delete,
            arguments=arguments,
            messages=ok.method.message_count,
            consumers=ok.method.consumer_count,
        )
        self._record(lambda registry: registry.add_queue(record))
        return record

    def delete_queue(self, name: str) -> int:
        """Delete ``name`` (NOT_FOUND if missing); returns how many messages went with it."""

        def work(ch: Any) -> int:
            ch.queue_declare(queue=name, passive=True)
            return ch.queue_delete(queue=name).method.message_count

        count = self._call(work)
        self._record(lambda registry: registry.remove_queue(name))
        return int(count or 0)

    def purge_queue(self, name: str) -> int:
        """Remove the ready messages of ``name``; returns how many."""
        count = self._call(lambda ch: ch.queue_purge(queue=name).method.message_count)
        self._record(lambda registry: registry.purge_queue(name))
        return int(count or 0)

    # ------------------------------------------------------------- bindings
    def bind(
        self,
        source: str,
        destination: str,
        destination_type: str = "queue",
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        record = binding_record(source, destination, destination_type, routing_key, arguments)
        self._call(lambda ch: self._binding_method(ch, "bind", record))
        self._record(lambda registry: registry.add_binding(record))
        return record

    def unbind(
        self,
        source: str,
        destination: str,
        destination_type: str = "queue",
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        record = binding_record(source, destination, destination_type, routing_key, arguments)
        self._call(lambda ch: self._binding_method(ch, "unbind", record))
        self._record(lambda registry: registry.remove_binding(record))

    @staticmethod
    def _binding_method(channel: Any, verb: str, record: Mapping[str, Any]) -> Any:
        """``queue_bind`` / ``exchange_unbind`` ... for ``record``, on the owner's channel (verb: bind / unbind)."""
        kind = "exchange" if record["destination_type"] == "exchange" else "queue"
        method = getattr(channel, f"{kind}_{verb}")
        args = dict(record["arguments"] or {})
        if kind == "exchange":
            return method(
                destination=record["destination"],
                source=record["source"],
                routing_key=record["routing_key"],
                arguments=args,
            )
        return method(
            queue=record["destination"], exchange=record["source"], routing_key=record["routing_key"], arguments=args
        )

    # ------------------------------------------------------------- listing
    def snapshot(self, max_age: float = 0.0) -> dict[str, Any]:
        """The whole vhost through the management API when it answers, else what the lab declared.

        ``max_age``: a snapshot taken less than that many seconds ago may be reused, unless the lab changed
        something since (the explainer asks on every keystroke; it need not list the vhost each time).
        """
        cached = self._cached
        if max_age > 0 and cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        taken = time.monotonic()
        snapshot = None
        if self.management_available():
            try:
                with self._lock:
                    made = list(self.registry.bindings.values())
                snapshot = with_exact_arguments(self.management_snapshot(), made)
            except LabError as exc:
                log.warning("management API listing failed (%s); showing the lab's own registry", exc.message)
        if snapshot is None:
            snapshot = self.lab_snapshot()
        self._cached = (taken, snapshot)
        return snapshot

    def management_snapshot(self) -> dict[str, Any]:
        assert self.management is not None
        vhost = quote(self.vhost, safe="")
        exchanges = self.management.get(
            f"/api/exchanges/{vhost}", columns="name,type,durable,auto_delete,internal,arguments"
        )
        queues = self.management.get(
            f"/api/queues/{vhost}",
            columns="name,durable,exclusive,auto_delete,arguments,messages,consumers,policy,effective_policy_definition",
        )
        bindings = self.management.get(f"/api/bindings/{vhost}")
        return from_management(exchanges or [], queues or [], bindings or [])

    def lab_snapshot(self) -> dict[str, Any]:
        """The registry, checked against the broker: entries others deleted go, counts are exact."""
        with self._lock:
            exchanges = list(self.registry.exchanges)
            queues = list(self.registry.queues)
        gone_exchanges, counts = self._call(lambda ch: probe(ch, exchanges, queues))
        with self._lock:
            for name in gone_exchanges:
                self.registry.remove_exchange(name)
            for name, count in counts.items():
                if count is None:
                    self.registry.remove_queue(name)
                elif name in self.registry.queues:
                    self.registry.queues[name]["messages"], self.registry.queues[name]["consumers"] = count
            return self.registry.snapshot()

    def route(
        self,
        exchange: str,
        routing_key: str,
        headers: Mapping[str, Any] | None = None,
        *,
        max_age: float = 0.0,
        explain_misses: int | None = 0,
        near_misses: int = 0,
    ) -> Any:
        """The routing engine's answer over the current topology (a ``RouteResult``).

        What the snapshot does not hold is asked of the broker with passive declares: a queue named by a
        default-exchange key, an exchange (then its bindings are unknown: ``routed`` None, unless the management
        API lists them). The lab's taps count, marked as the lab's. A cached management listing that misses the
        exchange is read again once before the broker is asked. The topology is indexed once per version (see
        :meth:`index`); ``explain_misses`` and ``near_misses`` as in :func:`rabbit.routing.route_indexed` (by default
        no miss is explained: a prediction needs only where the message goes).
        """
        from rabbit.routing import route_indexed

        headers = dict(headers or {})
        snapshot = self.snapshot(max_age)
        index = self.index(snapshot)
        missing_x, missing_q = _missing(index, exchange, routing_key, headers)
        if exchange in missing_x and max_age > 0 and snapshot.get("source") == "management":
            # Maybe declared a moment ago: the cached listing has not seen it (its bindings would be unknown).
            # A missing queue is only probed: re-listing the vhost on each keystroke of the explainer costs too much.
            snapshot = self.snapshot(0.0)
            index = self.index(snapshot)
            missing_x, missing_q = _missing(index, exchange, routing_key, headers)
        found_x, found_q = self._exists(missing_x, missing_q, max_age)
        lab_queues = {b["destination"]: b.get("lab", "tap") for b in self._lab_bindings()}
        result = route_indexed(
            index,
            exchange,
            routing_key,
            headers,
            extra_queues=found_q,
            opaque=found_x,
            lab_queues=lab_queues,
            explain_misses=explain_misses,
            near_misses=near_misses,
        )
        result.topology_version = self._version(snapshot)
        for name in found_q:
            if any(m.destination == name for m in result.matches):
                result.notes.append(
                    f"'{name}' is not a queue the lab knows of, but a passive declare shows it exists"
                    + ("" if snapshot.get("source") == "management" else " (declared by another application)")
                )
        if snapshot.get("source") != "management" and exchange != DEFAULT_EXCHANGE and result.refused is None:
            _bindings_unknown(result)
        if result.unknown:
            result.caveat(MANAGEMENT_HINT)
        return result

    def matrix(
        self, exchange: str, keys: list[str], headers: list[dict[str, Any]], *, max_age: float = 0.0
    ) -> dict[str, Any]:
        """Which binding takes which message: one row per (key, headers), one column per binding the exchange
        may pass a message to; each cell what :meth:`route` says for that row."""
        rows = [
            self.route(exchange, k, h, max_age=max_age, explain_misses=0) for k, h in zip(keys, headers, strict=True)
        ]
        columns = self.index(self.snapshot(max_age)).reachable(exchange)
        position = {_column(b): i for i, b in enumerate(columns)}
        cells = []
        for result in rows:
            row = [False] * len(columns)
            for match in result.matches:
                i = position.get(_column(match.binding))
                if i is not None:
                    row[i] = True
            cells.append(row)
        return {
            "exchange": exchange,
            "bindings": [b.to_dict() for b in columns],
            "keys": list(keys),
            "headers": [dict(h) for h in headers],
            "cells": cells,
            "topology_version": rows[0].topology_version if rows else None,
        }

    def index(self, snapshot: Mapping[str, Any]) -> Any:
        """The engine's :class:`~rabbit.routing.RoutingIndex` of ``snapshot`` with the lab's taps, built once per
        topology version (and per set of taps) and reused while neither changes, whoever listed it again."""
        from rabbit.routing import RoutingIndex

        lab = self._lab_bindings()
        taps = json.dumps(sorted(binding_key(b) for b in lab)) if lab else ""
        key = (self._version(snapshot), taps)
        known = self._indexed
        if known is not None and known[0] == key:
            return known[1]
        index = RoutingIndex(*self._inputs(snapshot, lab))
        self._indexed = (key, index)
        return index

    def _version(self, snapshot: Mapping[str, Any]) -> str:
        """:func:`topology_version`, computed once per snapshot (a cached one serves many predictions)."""
        known = self._versioned
        if known is not None and known[0] is snapshot:
            return known[1]
        version = topology_version(snapshot)
        self._versioned = (snapshot, version)
        return version

    def _inputs(self, snapshot: Mapping[str, Any], lab: list[dict[str, Any]]) -> tuple[list[Any], list[Any], list[str]]:
        """The engine's inputs, with the lab's tap bindings in place of whatever the listing says of their queues
        (the lab knows their exact arguments; without the management API they are not listed at all)."""
        from rabbit.routing import BindingInfo

        exchanges, bindings, queues = routing_inputs(snapshot)
        if lab:
            own = {b["destination"] for b in lab}
            bindings = [b for b in bindings if not (b.destination_type == "queue" and b.destination in own)]
            bindings += [
                BindingInfo(b["source"], b["destination"], "queue", b.get("routing_key", ""), b.get("arguments") or {})
                for b in lab
            ]
            queues = [*queues, *(q for q in own if q not in queues)]
        return exchanges, bindings, queues

    def _lab_bindings(self) -> list[dict[str, Any]]:
        if self.lab_bindings is None:
            return []
        try:
            return [b for b in self.lab_bindings() if b.get("destination")]
        except Exception:
            log.exception("reading the lab's own bindings failed")
            return []

    def _exists(self, exchanges: list[str], queues: list[str], max_age: float) -> tuple[list[str], list[str]]:
        """Which of these exchanges and queues exist, by passive declares (answers kept ``max_age`` seconds)."""
        if not exchanges and not queues:
            return [], []
        now = time.monotonic()
        known = {k: v for k, v in self._probed.items() if now - v[0] < max_age}
        ask_x = [n for n in exchanges if ("x", n) not in known]
        ask_q = [n for n in queues if ("q", n) not in known]
        if ask_x or ask_q:
            gone, counts = self._call(lambda ch: probe(ch, ask_x, ask_q))
            for name in ask_x:
                known[("x", name)] = (now, name not in gone)
            for name in ask_q:
                known[("q", name)] = (now, counts.get(name, (0, 0)) is not None)
            if len(known) > 1000:
                known = dict(list(known.items())[-1000:])
        self._probed = known
        return [n for n in exchanges if known[("x", n)][1]], [n for n in queues if known[("q", n)][1]]
