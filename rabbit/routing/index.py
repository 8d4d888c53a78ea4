"""A topology indexed for routing: built once per topology version, then asked for many messages.

Per exchange the bindings in their listed order, and how to find the ones a key matches without testing each:
a trie for a topic exchange, a key -> bindings table for a direct one (a fanout takes all; a headers exchange is
compared binding by binding, as the broker does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rabbit.routing.headers import explain_headers, headers_match
from rabbit.routing.model import BindingInfo, ExchangeInfo
from rabbit.routing.trie import TopicTrie


def normal_key(key: str) -> str:
    """A key with its surrounding spaces and its case taken away (to find the keys that differ only by those)."""
    return key.strip().casefold()


class RoutingIndex:
    """Exchanges, bindings and queue names of one topology, indexed; read-only once built (shared by threads)."""

    def __init__(
        self, exchanges: Iterable[ExchangeInfo], bindings: Iterable[BindingInfo], queues: Iterable[str] | None = None
    ) -> None:
        self.exchanges: dict[str, ExchangeInfo] = {}
        for x in exchanges:
            self.exchanges[x.name] = x
        self.bindings: list[BindingInfo] = list(bindings)
        self.queues: frozenset[str] | None = None if queues is None else frozenset(queues)
        self.by_source: dict[str, list[BindingInfo]] = {}
        for binding in self.bindings:
            self.by_source.setdefault(binding.source, []).append(binding)
        self._tries: dict[str, TopicTrie] = {}
        self._direct: dict[str, dict[str, list[int]]] = {}
        self._normal: dict[str, dict[str, list[int]]] = {}
        self._queues_normal: dict[str, list[str]] | None = None
        for name, listed in self.by_source.items():
            kind = self.exchanges[name].type if name in self.exchanges else None
            if kind == "topic":
                self._tries[name] = TopicTrie((b.routing_key, i) for i, b in enumerate(listed))
            elif kind == "direct":
                table: dict[str, list[int]] = {}
                for i, b in enumerate(listed):
                    table.setdefault(b.routing_key, []).append(i)
                self._direct[name] = table
        # What a publish may reach: for the passive declares of what the listing lacks.
        self.exchange_destinations = list(
            dict.fromkeys(b.destination for b in self.bindings if b.destination_type == "exchange")
        )
        self.alternates = [x.alternate for x in self.exchanges.values() if x.alternate]

    def reachable(self, exchange: str) -> list[BindingInfo]:
        """The bindings of ``exchange`` and of every exchange it may pass a message on to (through its
        exchange-to-exchange bindings and alternate exchanges), exchange by exchange in breadth-first order."""
        found: list[BindingInfo] = []
        seen, work = {exchange}, [exchange]
        while work:
            name = work.pop(0)
            listed = self.by_source.get(name, [])
            found.extend(listed)
            onward = [b.destination for b in listed if b.destination_type == "exchange"]
            alternate = self.exchanges[name].alternate if name in self.exchanges else None
            for nxt in [*onward, *([alternate] if alternate else [])]:
                if nxt not in seen:
                    seen.add(nxt)
                    work.append(nxt)
        return found

    def trie(self, exchange: str) -> TopicTrie | None:
        return self._tries.get(exchange)

    def matching(self, exchange: ExchangeInfo, keys: list[str], headers: Mapping[str, Any]) -> list[int]:
        """The positions (in ``by_source[exchange]``) of the bindings that take a message, in listed order."""
        listed = self.by_source.get(exchange.name, [])
        if not listed:
            return []
        if exchange.type == "fanout":
            return list(range(len(listed)))
        if exchange.type == "topic":
            trie = self._tries[exchange.name]
            found: set[int] = set()
            for key in keys:
                found |= trie.match(key)
            return sorted(found)
        if exchange.type == "direct":
            table = self._direct[exchange.name]
            found = set()
            for key in keys:
                found.update(table.get(key, ()))
            return sorted(found)
        if exchange.type == "headers":
            return [
                i
                for i, b in enumerate(listed)
                if (
                    explain_headers(b.arguments, headers, b.unclear)["matched"]
                    if b.unclear
                    else headers_match(b.arguments, headers)
                )
            ]
        return []

    def direct_normal(self, exchange: str) -> dict[str, list[int]]:
        """Direct binding keys by :func:`normal_key` (built when first asked)."""
        table = self._normal.get(exchange)
        if table is None:
            table = {}
            for i, b in enumerate(self.by_source.get(exchange, [])):
                table.setdefault(normal_key(b.routing_key), []).append(i)
            self._normal[exchange] = table
        return table

    def queues_normal(self) -> dict[str, list[str]]:
        """Queue names by :func:`normal_key` (built when first asked)."""
        if self._queues_normal is None:
            table: dict[str, list[str]] = {}
            for name in sorted(self.queues or ()):
                table.setdefault(normal_key(name), []).append(name)
            self._queues_normal = table
        return self._queues_normal
