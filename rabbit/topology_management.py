"""The management API's view of a vhost, normalised to the snapshot shape (pure: the HTTP reads are in
:meth:`rabbit.topology.Topology.management_snapshot`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rabbit.topology_model import (
    DEFAULT_EXCHANGE,
    binding_key,
    binding_record,
    exchange_record,
    queue_record,
    snapshot_of,
)

MIRRORING_REMOVED = "classic mirrored queues were removed in RabbitMQ 4.0: use a quorum queue"


def _mirroring(queue: Mapping[str, Any]) -> dict[str, Any]:
    """``{"mirrored": ...}`` for a queue a policy mirrors (``ha-mode`` in its effective policy), else nothing:
    what it asks for and that RabbitMQ 4.0 no longer does it."""
    definition = queue.get("effective_policy_definition")
    if not isinstance(definition, Mapping) or "ha-mode" not in definition:
        return {}
    mode = definition.get("ha-mode")
    params = definition.get("ha-params")
    asked = f"ha-mode {mode}" + (f" {params}" if params is not None else "")
    policy = queue.get("policy")
    return {"mirrored": f"policy '{policy}' asks for {asked}: {MIRRORING_REMOVED}" if policy else MIRRORING_REMOVED}


# --------------------------------------------------------------------------- the management API's view
def from_management(
    exchanges: Iterable[Mapping[str, Any]], queues: Iterable[Mapping[str, Any]], bindings: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Normalise the management API's lists to the snapshot shape.

    The implicit bindings of the default exchange (one per queue, key = queue name) are left out: every queue
    has one and cannot lose it, the routing engine knows the rule, and listing them would only hide the real ones.
    """
    return snapshot_of(
        "management",
        (
            exchange_record(
                e.get("name", ""),
                e.get("type", "direct"),
                durable=e.get("durable", False),
                auto_delete=e.get("auto_delete", False),
                internal=e.get("internal", False),
                arguments=e.get("arguments") or {},
            )
            for e in exchanges
        ),
        (
            queue_record(
                q["name"],
                durable=q.get("durable", False),
                exclusive=q.get("exclusive", False),
                auto_delete=q.get("auto_delete", False),
                arguments=q.get("arguments") or {},
                messages=q.get("messages") or 0,
                consumers=q.get("consumers") or 0,
            )
            | _mirroring(q)
            for q in queues
        ),
        (
            _unclear(
                binding_record(
                    b.get("source", ""),
                    b["destination"],
                    b.get("destination_type", "queue"),
                    b.get("routing_key", ""),
                    b.get("arguments") or {},
                )
            )
            for b in bindings
            if b.get("source", "") != DEFAULT_EXCHANGE
        ),
    )


def _unclear(record: dict[str, Any]) -> dict[str, Any]:
    """Mark the arguments the management view may show otherwise than the broker holds them
    (``arguments_unclear``): a void value comes as the string "undefined", a nested table with its keys sorted."""
    from rabbit.routing import blurred_by_management

    unclear = sorted(k for k, v in record["arguments"].items() if blurred_by_management(v))
    if unclear:
        record["arguments_unclear"] = unclear
    return record


def with_exact_arguments(snapshot: dict[str, Any], made: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The management snapshot with the lab's own bindings' arguments as the lab declared them (exact), in place
    of the management API's rendering of them; only the bindings marked ``arguments_unclear`` can differ."""
    from rabbit.routing import same_in_management_view

    ends = ("source", "destination", "destination_type", "routing_key")
    candidates: dict[tuple, list[Mapping[str, Any]]] = {}
    for record in made:
        candidates.setdefault(tuple(record[k] for k in ends), []).append(record)
    if not any(b.get("arguments_unclear") for b in snapshot["bindings"]):
        return snapshot
    bindings = []
    for binding in snapshot["bindings"]:
        pool = candidates.get(tuple(binding[k] for k in ends)) if binding.get("arguments_unclear") else None
        exact = next((r for r in pool or [] if same_in_management_view(r["arguments"], binding["arguments"])), None)
        if exact is None:
            bindings.append(binding)
            continue
        pool.remove(exact)
        bindings.append(binding_record(*(binding[k] for k in ends), exact["arguments"]))
    return {**snapshot, "bindings": sorted(bindings, key=binding_key)}
