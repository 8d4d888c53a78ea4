"""One shape for a message wherever the page shows one: a delivery, a tapped copy, a trace copy (pure, no I/O).

:func:`message_view` builds the fields they share:

- ``exchange``, ``routing_key``, ``redelivered`` (None where the source cannot say, e.g. a traced publish);
- ``properties``: the basic properties as JSON, ``headers`` included;
- ``body``: what :func:`~rabbit.properties.body_preview` makes of the bytes (``kind`` json / text / binary,
  ``text``, ``json``, ``hex``, ``size``, ``truncated`` and sometimes ``note``);
- ``id``: the lab id from the :data:`ID_HEADER` header, None for a message the lab did not publish.

Each source adds its own fields on top (a delivery its ``consumer_id`` and ``delivery_tag``, a tap its ``tap_id``,
a trace copy its ``kind`` and ``routed_queues``...), so the page reads a message the same way everywhere.
"""

from __future__ import annotations

from typing import Any

import pika

from rabbit.properties import PREVIEW_BYTES, body_preview, from_pika

# Every message the lab publishes carries its lab id and its publish time (epoch ms) in these headers.
ID_HEADER = "x-rabbitlens-id"
TIME_HEADER = "x-rabbitlens-published"


def lab_id(headers: Any) -> str | None:
    """The lab id in a message's (JSON) headers, or None when there is none or it is not a string."""
    value = headers.get(ID_HEADER) if isinstance(headers, dict) else None
    return value if isinstance(value, str) else None


def message_view(
    exchange: str,
    routing_key: str,
    properties: dict[str, Any],
    body: bytes,
    *,
    redelivered: bool | None,
    limit: int = PREVIEW_BYTES,
) -> dict[str, Any]:
    """The shared fields of one message as the page shows it; ``properties`` is the JSON form (see
    :func:`~rabbit.properties.from_pika`), ``limit`` how many bytes of the body the preview keeps.
    Never raises for any body."""
    content_type = properties.get("content_type")
    return {
        "exchange": exchange,
        "routing_key": routing_key,
        "redelivered": redelivered,
        "properties": properties,
        "body": body_preview(body, content_type if isinstance(content_type, str) else None, limit),
        "id": lab_id(properties.get("headers")),
    }


def delivered_view(
    method: Any, properties: pika.BasicProperties | None, body: bytes, limit: int = PREVIEW_BYTES
) -> dict[str, Any]:
    """:func:`message_view` of a message pika delivered (``method`` a ``Basic.Deliver``)."""
    return message_view(
        method.exchange,
        method.routing_key,
        from_pika(properties),
        body,
        redelivered=bool(method.redelivered),
        limit=limit,
    )
