"""The explanations of direct, topic and fanout bindings against every routing key of a message."""

from __future__ import annotations

from typing import Any

from rabbit.routing.model import BindingInfo, _quote
from rabbit.routing.topic import explain_topic


def _explain_keys(exchange_type: str, binding: BindingInfo, keys: list[str]) -> dict[str, Any]:
    """Explain a direct or topic binding against every routing key of the message (the key, then CC/BCC)."""
    explained = []
    for key in keys:
        if exchange_type == "topic":
            explained.append(explain_topic(binding.routing_key, key))
        else:
            same = binding.routing_key == key
            text = (
                f"the binding key {_quote(binding.routing_key)} equals the routing key"
                if same
                else f"the binding key {_quote(binding.routing_key)} is not the routing key {_quote(key)}"
            )
            explained.append({"type": "direct", "matched": same, "routing_key": key, "text": text})
    chosen = next((e for e in explained if e["matched"]), explained[0])
    if len(keys) > 1:
        chosen = {**chosen, "routing_keys": list(keys)}
        if chosen["matched"] and chosen["routing_key"] != keys[0]:
            chosen["text"] += f" (by the CC/BCC key {_quote(chosen['routing_key'])})"
    return chosen


def _explain_fanout() -> dict[str, Any]:
    return {"type": "fanout", "matched": True, "text": "a fanout exchange copies every message to all its bindings"}
