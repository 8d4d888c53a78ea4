"""The graph walk (``rabbit_exchange:route/2``, ``rabbit_basic:make_message/4``): the default exchange, the
exchange-to-exchange bindings (each exchange at most once), alternate exchanges and the CC / BCC routing keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

from rabbit.errors import InvalidInput
from rabbit.routing.explain import _explain_fanout, _explain_keys
from rabbit.routing.headers import explain_headers
from rabbit.routing.index import RoutingIndex
from rabbit.routing.model import (
    DEFAULT_EXCHANGE,
    DIRECT_REPLY_TO_PREFIX,
    EXCHANGE_TYPES,
    BindingInfo,
    ExchangeInfo,
    Match,
    Miss,
    RouteResult,
    UnknownExchange,
    _quote,
)


def _routing_keys(routing_key: str, headers: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The keys the broker routes by (the key plus CC and BCC longstr items) and notes on CC/BCC."""
    keys, notes = [routing_key], []
    for name in ("CC", "BCC"):
        if name not in headers:
            continue
        value = headers[name]
        if not isinstance(value, list | tuple):
            raise InvalidInput(
                f"the {name} header must be an array of routing keys: the broker refuses this message "
                f"(PRECONDITION_FAILED - invalid message: unacceptable_type_in_header {name})"
            )
        extra = [v for v in value if isinstance(v, str)]
        keys.extend(extra)
        notes.append(f"the {name} header adds the routing keys {extra}" if extra else f"the {name} header is empty")
    if "BCC" in headers:
        notes.append("the broker removes the BCC header before routing, so headers bindings never see it")
    return keys, notes


def _route_default(result: RouteResult, keys: list[str], queues: set[str] | None) -> None:
    result.notes.append("the default exchange routes to the queue named by the key")
    for key in dict.fromkeys(keys):
        binding = BindingInfo(DEFAULT_EXCHANGE, key, "queue", key)
        if key.startswith(DIRECT_REPLY_TO_PREFIX):
            result.notes.append(
                f"{_quote(key)} is a direct reply-to address: the broker hands it to the waiting RPC client's "
                "consumer, not to a queue"
            )
            continue
        exists = key != "" and (queues is None or key in queues)  # no queue has the empty name
        text = (
            f"the default exchange delivers to the queue named {_quote(key)}"
            if exists
            else f"the default exchange finds no queue named {_quote(key)}"
        )
        explanation = {"type": "default", "matched": exists, "queue_exists": exists, "text": text}
        if exists:
            result.matches.append(Match(binding, (DEFAULT_EXCHANGE,), explanation))
            if key not in result.queues:
                result.queues.append(key)
        else:
            result.misses.append(Miss(binding, (DEFAULT_EXCHANGE,), explanation))


def route(
    exchanges: Iterable[ExchangeInfo],
    bindings: Iterable[BindingInfo],
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
    queues: Iterable[str] | None = None,
    *,
    opaque: Iterable[str] = (),
    lab_queues: Mapping[str, str] | None = None,
    explain_misses: int | None = None,
    near_misses: int = 0,
) -> RouteResult:
    """Every queue a message published to ``exchange`` reaches, by which bindings and hops, and why.

    ``opaque``: exchanges known to exist (a passive declare said so) whose type and bindings are unknown; a
    message reaching one makes ``routed`` None unless some queue is found anyway. ``lab_queues``: the lab's own
    queues (queue -> what it is, e.g. ``"tap"``): they count, as on the broker, and are marked as the lab's.
    To route many messages over one topology, build a :class:`RoutingIndex` once and call :func:`route_indexed`.
    """
    index = RoutingIndex(exchanges, bindings, queues)
    return route_indexed(
        index,
        exchange,
        routing_key,
        headers,
        opaque=opaque,
        lab_queues=lab_queues,
        explain_misses=explain_misses,
        near_misses=near_misses,
    )


def route_indexed(
    index: RoutingIndex,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
    *,
    extra_queues: Iterable[str] = (),
    opaque: Iterable[str] = (),
    lab_queues: Mapping[str, str] | None = None,
    explain_misses: int | None = None,
    near_misses: int = 0,
) -> RouteResult:
    """:func:`route` over an indexed topology. ``extra_queues``: queues known to exist beyond the index's.

    ``explain_misses``: explain at most that many of the bindings that do not match (None: all of them; the
    result's ``misses_total`` then counts them all). ``near_misses``: list up to that many of the smallest
    changes that would make a missed binding match, each checked by routing it (see :mod:`rabbit.routing.near`).
    """
    extra = set(extra_queues)
    queue_names = index.queues if index.queues is None or not extra else index.queues | extra
    opaque = set(opaque)
    result = _walk(index, exchange, routing_key, headers, queue_names, opaque, explain_misses=explain_misses)
    if explain_misses is not None:
        result.misses_total = result.missed_count
    lab = dict(lab_queues or {})
    if lab and any(q in lab for q in result.queues):
        result.matches = [
            Match(m.binding, m.via, m.explanation, lab=True)
            if m.destination_type == "queue" and m.destination in lab
            else m
            for m in result.matches
        ]
        result.lab_queues = [q for q in result.queues if q in lab]
        kinds = sorted({lab[q] for q in result.lab_queues})
        what = " or ".join(kinds)
        alone = _walk(
            index, exchange, routing_key, headers, queue_names, opaque, explain_misses=0, without=lab, explain=False
        )
        if not alone.queues and alone.routed is False:
            result.caveat(
                f"without the lab's {what} this message would be unroutable "
                f"(mandatory will not return it while the {what} is bound)"
            )
        elif sorted(alone.queues) != sorted(q for q in result.queues if q not in lab):
            result.caveat(
                f"without the lab's {what} this message would go to {', '.join(map(_quote, alone.queues))} "
                f"(the {what} keeps an alternate exchange from taking it)"
            )
        else:
            result.notes.append(f"the lab's {what} also gets a copy: {', '.join(map(_quote, result.lab_queues))}")
    if near_misses > 0:
        from rabbit.routing.near import find_near_misses

        result.near_misses = find_near_misses(
            index, result, routing_key, dict(headers or {}), near_misses, queue_names=queue_names, opaque=opaque
        )
    return result


def _walk(
    index: RoutingIndex,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None,
    queue_names: Set[str] | None,
    opaque: set[str],
    *,
    explain_misses: int | None = None,
    without: Mapping[str, str] | None = None,
    explain: bool = True,
) -> RouteResult:
    """The walk itself. ``without``: queues whose bindings are left out (as if unbound: the lab's own taps);
    ``explain`` False: the matches carry no explanation (only where the message goes counts)."""
    by_name = index.exchanges
    headers = dict(headers or {})
    result = RouteResult(exchange=exchange)
    keys, key_notes = _routing_keys(routing_key, headers)
    result.notes.extend(key_notes)
    seen_headers = {k: v for k, v in headers.items() if k != "BCC"}
    if exchange == DEFAULT_EXCHANGE:
        _route_default(result, keys, None if queue_names is None else set(queue_names))
        return result
    if exchange not in by_name:
        if exchange in opaque:
            _reach_opaque(result, exchange)
            return result
        raise UnknownExchange(exchange)
    start = by_name[exchange]
    if start.internal:
        result.refused = "internal exchange"
        result.caveat(
            f"refused: internal exchange: the broker refuses a publish to {_quote(exchange)} "
            "(403 ACCESS_REFUSED); messages reach it only through exchange-to-exchange bindings"
        )
        return result

    seen = {exchange}
    work: list[tuple[ExchangeInfo, tuple[str, ...]]] = [(start, (exchange,))]
    while work:
        current, via = work.pop(0)
        if current.type not in EXCHANGE_TYPES:
            result.notes.append(
                f"{_quote(current.name)} has the plugin type {_quote(current.type)}: its routing is not predicted"
            )
            continue
        if current.type == "topic" and routing_key == "":
            result.notes.append(
                "the routing key is empty, so it has no words: on a topic exchange only '#'-only binding keys "
                "and the empty binding key match it"
            )
        dests = _visit(index, result, current, via, keys, seen_headers, explain_misses, without, explain)
        next_exchanges = [b.destination for b in dests if b.destination_type == "exchange"]
        if not dests and current.alternate is not None:
            result.alternates.append({"exchange": current.name, "alternate": current.alternate})
            result.notes.append(
                f"nothing bound to {_quote(current.name)} takes the message, "
                f"so it goes to its alternate exchange {_quote(current.alternate)}"
            )
            next_exchanges.append(current.alternate)
        for binding in dests:
            if binding.destination_type == "queue" and binding.destination not in result.queues:
                result.queues.append(binding.destination)
        for name in next_exchanges:
            if name in seen:
                result.notes.append(f"{_quote(name)} was already visited: the broker routes through each exchange once")
                continue
            seen.add(name)
            if name not in by_name:
                if name in opaque:
                    _reach_opaque(result, name)
                else:
                    result.notes.append(f"there is no exchange {_quote(name)}: that path ends there")
                continue
            work.append((by_name[name], (*via, name)))
    return _concluded(result)


def _concluded(result: RouteResult) -> RouteResult:
    """The closing notes of a walk (nothing took it; other queues may), without repeats."""
    if not result.queues and not result.unknown:
        result.notes.append("no queue takes the message: the broker drops it (or returns it if published mandatory)")
    elif result.unknown and result.queues:
        result.caveat("other queues may get it too, through the exchanges whose bindings are unknown")
    result.notes = list(dict.fromkeys(result.notes))
    return result


def _visit(
    index: RoutingIndex,
    result: RouteResult,
    current: ExchangeInfo,
    via: tuple[str, ...],
    keys: list[str],
    headers: Mapping[str, Any],
    explain_misses: int | None,
    without: Mapping[str, str] | None,
    explain: bool = True,
) -> list[BindingInfo]:
    """Match the bindings of one exchange: the matches explained, the misses up to ``explain_misses``."""
    listed = index.by_source.get(current.name, [])
    matched = index.matching(current, keys, headers)
    if without:
        matched = [
            i for i in matched if not (listed[i].destination_type == "queue" and listed[i].destination in without)
        ]
    result.visited.append((current.name, via, frozenset(matched)))
    if current.type == "headers" and explain:  # every binding's doubt is a caveat, matched or not, in the listed order
        for binding in listed:
            if binding.unclear:
                _explain(current, binding, keys, headers, result)
    dests = [listed[i] for i in matched]
    for binding in dests:
        explanation = _explain(current, binding, keys, headers, result) if explain else {}
        result.matches.append(Match(binding, via, explanation))
    missed = len(listed) - len(matched)
    if without:
        missed -= sum(1 for b in listed if _left_out(b, without))
    result.missed_count += missed
    if missed and (explain_misses is None or len(result.misses) < explain_misses):
        taken = set(matched)
        for i, binding in enumerate(listed):
            if explain_misses is not None and len(result.misses) >= explain_misses:
                break
            if i in taken or (without and _left_out(binding, without)):
                continue
            result.misses.append(Miss(binding, via, _explain(current, binding, keys, headers, None)))
    return dests


def _left_out(binding: BindingInfo, without: Mapping[str, str]) -> bool:
    return binding.destination_type == "queue" and binding.destination in without


def _explain(
    exchange: ExchangeInfo,
    binding: BindingInfo,
    keys: list[str],
    headers: Mapping[str, Any],
    result: RouteResult | None,
) -> dict[str, Any]:
    if exchange.type == "fanout":
        return _explain_fanout()
    if exchange.type == "headers":
        explanation = explain_headers(binding.arguments, headers, binding.unclear)
        if result is not None and explanation.get("uncertain"):
            end = f"{_quote(binding.source)} -> {_quote(binding.destination)}"
            result.caveat(f"the binding {end} may decide otherwise: {explanation['uncertain']}")
        return explanation
    return _explain_keys(exchange.type, binding, keys)


def _reach_opaque(result: RouteResult, name: str) -> None:
    result.unknown.append(name)
    result.caveat(f"{_quote(name)} exists; its bindings are unknown without the management API")
