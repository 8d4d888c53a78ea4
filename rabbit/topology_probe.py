"""What a snapshot does not show: passive-declare probes of exchanges and queues, the names a publish may reach
that the snapshot lacks, and the caveats of a prediction made without the management API."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pika.exceptions as pex

from rabbit.topology_model import DEFAULT_EXCHANGE, DIRECT_REPLY_TO_PREFIX, STANDARD_EXCHANGE_NAMES


def _bindings_unknown(result: Any) -> None:
    """Without the management API the lab knows only the bindings it made itself: the exchanges a message passes
    through may have bindings of other applications (a tutorial's ``receive_logs.py`` binding its own queue), so a
    message nothing the lab knows takes is not known to be dropped (``routed`` None), and one that something takes
    may go elsewhere too."""
    passed = [name for name, _via, _matched in result.visited if name != DEFAULT_EXCHANGE]
    if not passed:
        return
    if result.queues:
        result.caveat(
            "other applications' bindings are unknown without the management API: "
            "the message may reach other queues too"
        )
        return
    drops = "no queue takes the message: the broker drops it (or returns it if published mandatory)"
    result.notes = [n for n in result.notes if n != drops]
    for name in passed:
        if name not in result.unknown:
            result.unknown.append(name)
            result.caveat(
                f"'{name}' exists; its bindings are unknown without the management API "
                "(only the lab's own bindings are known, and none of them takes this message)"
            )


def _column(binding: Any) -> tuple[str, ...]:
    """A binding as a matrix column: both ends, the key and the arguments."""
    return (
        binding.source,
        binding.destination,
        binding.destination_type,
        binding.routing_key,
        json.dumps(list((binding.arguments or {}).items()), default=str),
    )


def _missing(index: Any, exchange: str, routing_key: str, headers: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The exchanges a publish may reach and the queues the default exchange may name that the topology lacks."""
    known = index.exchanges
    if exchange == DEFAULT_EXCHANGE:
        keys = [routing_key]
        for name in ("CC", "BCC"):
            value = headers.get(name)
            if isinstance(value, list | tuple):
                keys += [v for v in value if isinstance(v, str)]
        present = index.queues or ()
        wanted = [k for k in dict.fromkeys(keys) if k and k not in present and not k.startswith(DIRECT_REPLY_TO_PREFIX)]
        return [], wanted
    names = [exchange, *index.exchange_destinations, *index.alternates]
    return [n for n in dict.fromkeys(names) if n not in known and n != DEFAULT_EXCHANGE], []


def probe(
    channel: Any, exchanges: Iterable[str], queues: Iterable[str]
) -> tuple[list[str], dict[str, tuple[int, int] | None]]:
    """Passive declares on a side channel (a 404 closes it; the link's own channel stays untouched).

    Returns the exchanges that no longer exist and, per queue, ``(messages, consumers)`` or None if it is gone
    (a queue the probe could not read is left out).
    """
    connection = channel.connection
    side = connection.channel()
    gone: list[str] = []
    counts: dict[str, tuple[int, int] | None] = {}
    try:
        for name in exchanges:
            if name in STANDARD_EXCHANGE_NAMES:
                continue
            try:
                side.exchange_declare(exchange=name, passive=True)
            except pex.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    gone.append(name)
                side = connection.channel()
        for name in queues:
            try:
                ok = side.queue_declare(queue=name, passive=True)
                counts[name] = (ok.method.message_count, ok.method.consumer_count)
            except pex.ChannelClosedByBroker as exc:
                # 404: gone. Anything else (e.g. 405 RESOURCE_LOCKED: someone re-made it exclusive): it exists, but
                # this probe cannot read it; keep the last counts rather than fail the whole listing.
                if exc.reply_code == 404:
                    counts[name] = None
                side = connection.channel()
    finally:
        if side.is_open:
            with contextlib.suppress(Exception):
                side.close()
    return gone, counts
