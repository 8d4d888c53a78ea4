"""Checks on names, routing keys and arguments before anything reaches the broker (pure, no I/O).

Every check raises :class:`rabbit.errors.InvalidInput` with a message a learner can act on, and returns the
value it accepted (normalised where that is safe), so callers write ``name = check_name(body.name, "queue")``.

What AMQP 0-9-1 and RabbitMQ allow:
- exchange and queue names and routing keys are *short strings*: at most 255 bytes once encoded as UTF-8
  (so 255 ASCII characters, but only 85 three-byte characters such as ``兔``);
- argument tables map short-string keys to typed values; pika encodes ``str``, ``int`` (64-bit signed),
  ``bool``, ``None``, ``dict`` and ``list`` values, but not ``float``;
- a method frame or a content header frame must fit in one frame of the negotiated ``frame_max`` (131072 bytes by
  default), or the broker closes the whole connection with 501 FRAME_ERROR: tables are measured with pika's own
  encoder (:func:`check_table_size`).

Names and keys never hold control characters (U+0000..U+001F, U+007F..U+009F): RabbitMQ strips CR and LF from
names and answers with the stripped name, and pika then waits forever for a reply carrying the name it sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pika.data

from rabbit.errors import InvalidInput

MAX_SHORT_STRING = 255
DEFAULT_FRAME_MAX = 131072  # RabbitMQ's default; the lab uses the value each connection negotiated
# Room kept in a frame for what travels with a table: the frame header and end (8 bytes), method ids and flags,
# up to three short-string names (3 x 256) in a method frame, or the other twelve properties (9 short strings,
# ~2.3 KB at most) in a content header frame.
FRAME_RESERVE = 4096
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
DESTINATION_TYPES = ("queue", "exchange")
QUEUE_TYPES = ("classic", "quorum", "stream")
OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT32_MAX = 2**32 - 1
MAX_TABLE_DEPTH = 8


def utf8_length(value: str, what: str) -> int:
    """The length of ``value`` in UTF-8 bytes; invalid text (lone surrogates) is an error."""
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid UTF-8 text (it holds a lone surrogate code point)") from None


def control_character(value: str) -> tuple[int, str] | None:
    """The first control character in ``value`` (C0, DEL or C1) as ``(position, "U+000A")``, or None."""
    for i, char in enumerate(value):
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return i, f"U+{code:04X}"
    return None


def check_no_control(value: str, what: str) -> str:
    """Refuse control characters: the broker rewrites some of them (CR, LF) and a lab that sent the original
    name would wait for an answer that never comes."""
    found = control_character(value)
    if found is not None:
        position, code = found
        raise InvalidInput(
            f"{what} holds a control character ({code} at position {position}); names and keys may hold only "
            "printable characters (RabbitMQ strips CR and LF from names): remove it"
        )
    return value


def check_short_string(value: Any, what: str, *, allow_empty: bool = True, controls: bool = False) -> str:
    """A string that fits an AMQP short string: at most 255 bytes of valid UTF-8, and (unless ``controls``)
    no control characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {type_name(value)}")
    size = utf8_length(value, what)
    if not controls:
        check_no_control(value, what)
    if not value and not allow_empty:
        raise InvalidInput(f"{what} must not be empty")
    if size > MAX_SHORT_STRING:
        extra = f" ({len(value)} characters)" if size != len(value) else ""
        raise InvalidInput(f"{what} is {size} bytes of UTF-8{extra}; AMQP allows at most {MAX_SHORT_STRING} bytes")
    return value


def check_name(value: Any, what: str = "name", *, allow_empty: bool = False) -> str:
    """An exchange or queue name (also ``reply_to``): a non-empty short string without control characters
    (``allow_empty`` for the default exchange ``""`` or a queue the broker should name)."""
    return check_short_string(value, what, allow_empty=allow_empty)


def check_routing_key(value: Any, what: str = "routing key") -> str:
    """A routing key or binding key: a short string without control characters, empty allowed (the empty key is
    a key of no words)."""
    return check_short_string(value, what, allow_empty=True)


def check_exchange_type(value: Any) -> str:
    """One of the four built-in exchange types."""
    if value not in EXCHANGE_TYPES:
        raise InvalidInput(f"exchange type must be one of {', '.join(EXCHANGE_TYPES)}, not {value!r}")
    return value


def check_destination_type(value: Any) -> str:
    if value not in DESTINATION_TYPES:
        raise InvalidInput(f"destination type must be 'queue' or 'exchange', not {value!r}")
    return value


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number with a fraction", str: "a string"}.get(
        type(value), "an object" if isinstance(value, Mapping) else "a list" if isinstance(value, list) else "a value"
    )


def check_table_value(value: Any, where: str, depth: int = 0) -> Any:
    """A value pika can put in an AMQP field table (nested tables and arrays included)."""
    if depth > MAX_TABLE_DEPTH:
        raise InvalidInput(f"{where} is nested more than {MAX_TABLE_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidInput(f"{where} does not fit a 64-bit signed integer")
        return value
    if isinstance(value, float):
        raise InvalidInput(
            f"{where}: numbers with a fraction cannot go into an AMQP table here; use an integer or a string"
        )
    if isinstance(value, str):
        utf8_length(value, where)
        return value
    if isinstance(value, list):
        return [check_table_value(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return check_table(value, where, depth + 1)
    raise InvalidInput(f"{where} has a type an AMQP table cannot hold ({type(value).__name__})")


def check_table(table: Any, what: str = "arguments", depth: int = 0, *, frame_max: int | None = None) -> dict[str, Any]:
    """An AMQP field table: short-string keys (no control characters), encodable values. ``None`` is the empty
    table. With ``frame_max`` (the connection's negotiated frame size) the encoded table must fit in a frame too."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise InvalidInput(f"{what} must be a JSON object, not {type_name(table)}")
    checked: dict[str, Any] = {}
    for key, value in table.items():
        check_short_string(
            key, f"{what} key {key!r}" if isinstance(key, str) else f"a key of {what}", allow_empty=False
        )
        checked[key] = check_table_value(value, f"{what}[{key!r}]", depth)
    if frame_max is not None and depth == 0:
        check_table_size(checked, what, frame_max)
    return checked


def table_encoded_size(table: Mapping[str, Any]) -> int:
    """The size of ``table`` on the wire, in bytes, as pika encodes it (the 4-byte length prefix included)."""
    return pika.data.encode_table([], dict(table))


def table_limit(frame_max: int) -> int:
    """The most bytes one table may take in a frame of ``frame_max`` bytes."""
    return max(0, frame_max - FRAME_RESERVE)


def check_table_size(table: Mapping[str, Any] | None, what: str, frame_max: int) -> None:
    """Refuse a table that would not fit in one frame: the broker would close the whole connection (501
    FRAME_ERROR) and every user of it would lose their work. ``table`` must already be valid (:func:`check_table`)."""
    if not table:
        return
    size = table_encoded_size(table)
    limit = table_limit(frame_max)
    if size > limit:
        raise InvalidInput(
            f"{what} take {size} bytes encoded; at most {limit} bytes fit (the broker's frame_max is {frame_max} "
            f"bytes, {FRAME_RESERVE} of them kept for the rest of the frame): send a smaller table"
        )


def _int_argument(args: Mapping[str, Any], key: str, low: int, high: int) -> None:
    if key not in args:
        return
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{key} must be an integer, not {type_name(value)}")
    if not low <= value <= high:
        raise InvalidInput(f"{key} must be between {low} and {high}, not {value}")


def check_queue_arguments(arguments: Any, *, frame_max: int | None = None) -> dict[str, Any]:
    """Queue arguments: a valid table, and the well-known ``x-`` arguments with the types the broker wants.

    - ``x-message-ttl``: milliseconds, 0 .. 2^32-1;
    - ``x-max-length``, ``x-max-length-bytes``: non-negative integers;
    - ``x-expires``: milliseconds, at least 1;
    - ``x-max-priority``: 0 .. 255;
    - ``x-dead-letter-exchange``: an exchange name (``""`` is the default exchange);
    - ``x-dead-letter-routing-key``: a routing key, only together with ``x-dead-letter-exchange``;
    - ``x-queue-type``: classic, quorum or stream; ``x-overflow``: drop-head, reject-publish, reject-publish-dlx.
    Other arguments pass through for the broker to judge.
    """
    args = check_table(arguments, "queue arguments", frame_max=frame_max)
    _int_argument(args, "x-message-ttl", 0, UINT32_MAX)
    _int_argument(args, "x-max-length", 0, INT64_MAX)
    _int_argument(args, "x-max-length-bytes", 0, INT64_MAX)
    _int_argument(args, "x-expires", 1, UINT32_MAX)
    _int_argument(args, "x-max-priority", 0, 255)
    if "x-dead-letter-exchange" in args:
        check_name(args["x-dead-letter-exchange"], "x-dead-letter-exchange", allow_empty=True)
    if "x-dead-letter-routing-key" in args:
        check_routing_key(args["x-dead-letter-routing-key"], "x-dead-letter-routing-key")
        if "x-dead-letter-exchange" not in args:
            raise InvalidInput("x-dead-letter-routing-key needs x-dead-letter-exchange as well")
    if "x-queue-type" in args and args["x-queue-type"] not in QUEUE_TYPES:
        raise InvalidInput(f"x-queue-type must be one of {', '.join(QUEUE_TYPES)}, not {args['x-queue-type']!r}")
    if "x-overflow" in args and args["x-overflow"] not in OVERFLOW_MODES:
        raise InvalidInput(f"x-overflow must be one of {', '.join(OVERFLOW_MODES)}, not {args['x-overflow']!r}")
    return args


def check_exchange_arguments(arguments: Any, *, frame_max: int | None = None) -> dict[str, Any]:
    """Exchange arguments: a valid table; ``alternate-exchange`` must name an exchange."""
    args = check_table(arguments, "exchange arguments", frame_max=frame_max)
    if "alternate-exchange" in args:
        check_name(args["alternate-exchange"], "alternate-exchange")
    return args


def check_headers(headers: Any, *, frame_max: int | None = None) -> dict[str, Any]:
    """Message headers (for a headers exchange): a valid AMQP table."""
    return check_table(headers, "headers", frame_max=frame_max)
