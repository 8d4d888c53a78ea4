"""AMQP basic properties and message bodies between JSON and pika (pure, no I/O).

- :class:`MessageProperties` validates the JSON form of the thirteen basic properties (one pydantic model, so
  the API's OpenAPI schema and its checks come from the same place);
- :func:`to_pika` / :func:`from_pika` convert to ``pika.BasicProperties`` and back to JSON-safe values;
- :func:`decode_body` turns the API's ``body`` + ``body_encoding`` into bytes;
- :func:`body_preview` describes a body for the browser as text, pretty JSON and hex, bounded in size.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import re
from typing import Any, Literal

import pika
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rabbit.errors import InvalidInput

SHORTSTR_MAX = 255  # AMQP short strings (property values, header names) are at most 255 bytes
HEADERS_MAX_DEPTH = 8  # nested tables/arrays in headers (rabbit.validation.MAX_TABLE_DEPTH)
INT64_MAX = 2**63 - 1
PREVIEW_BYTES = 4096  # how much of a body the browser sees
# Bounds of the pretty-printed JSON preview: nesting depth, characters of output. A body past either is shown as
# text; a preview that fails in any other way is shown as hex. Nothing a body contains may stop its consumer.
PREVIEW_JSON_DEPTH = 64
PREVIEW_PRETTY_CHARS = 4 * PREVIEW_BYTES
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)
_PROPERTY_SET = frozenset(PROPERTY_NAMES)


def _shortstr(value: str | None, what: str) -> str | None:
    if value is not None and len(value.encode("utf-8")) > SHORTSTR_MAX:
        raise ValueError(f"{what} is longer than {SHORTSTR_MAX} bytes")
    return value


def check_headers_value(value: dict[str, Any]) -> dict[str, Any]:
    """The headers as an AMQP field table pika can encode (short-string names, 64-bit integers, no floats,
    nested at most :data:`HEADERS_MAX_DEPTH` deep); raises ``ValueError`` with the shared checks' message."""
    from rabbit.validation import check_table

    try:
        return check_table(value, "headers")
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


class MessageProperties(BaseModel):
    """The AMQP 0-9-1 basic properties, as JSON. Every field is optional; unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")

    content_type: str | None = Field(None, description="MIME type of the body, e.g. application/json")
    content_encoding: str | None = Field(None, description="e.g. gzip, utf-8")
    headers: dict[str, Any] | None = Field(None, description="application headers (a JSON object)")
    delivery_mode: Literal[1, 2] | None = Field(None, description="1 = transient, 2 = persistent")
    priority: int | None = Field(None, ge=0, le=255)
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = Field(None, description="per-message TTL in milliseconds, as a string of digits")
    message_id: str | None = None
    timestamp: int | None = Field(None, ge=0, le=INT64_MAX, description="seconds since the epoch")
    type: str | None = None
    user_id: str | None = Field(None, description="must equal the connection's user, or the broker refuses")
    app_id: str | None = None

    @field_validator(
        "content_type",
        "content_encoding",
        "correlation_id",
        "message_id",
        "type",
        "user_id",
        "app_id",
    )
    @classmethod
    def _short(cls, value: str | None, info: Any) -> str | None:
        return _shortstr(value, info.field_name)

    @field_validator("delivery_mode", mode="before")
    @classmethod
    def _delivery_mode(cls, value: Any) -> Any:
        # A Literal compares by equality, so true and 1.0 would pass as 1 even in strict mode.
        if value is not None and type(value) is not int:
            raise ValueError("delivery_mode must be the integer 1 (transient) or 2 (persistent)")
        return value

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        """A queue name (a consumer will publish its reply there): the shared name check, control characters
        refused."""
        from rabbit.validation import check_name

        if value is None:
            return None
        try:
            return check_name(value, "reply_to", allow_empty=True)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator("expiration")
    @classmethod
    def _expiration(cls, value: str | None) -> str | None:
        if value is not None and not (value.isascii() and value.isdigit()):
            raise ValueError('expiration must be a string of digits (milliseconds), e.g. "60000"')
        return _shortstr(value, "expiration")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_headers_value(value) if value is not None else None


def parse_properties(data: dict[str, Any] | None) -> MessageProperties:
    """Validate a JSON object of properties; raises :class:`InvalidInput` naming the first bad field."""
    from pydantic import ValidationError

    try:
        return MessageProperties.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "properties"
        raise InvalidInput(f"properties.{where}: {err['msg']}") from None


def to_pika(props: MessageProperties | None, extra_headers: dict[str, Any] | None = None) -> pika.BasicProperties:
    """``pika.BasicProperties`` from validated properties, with ``extra_headers`` (the lab's own) merged in."""
    return pika_from_values(property_values(props), extra_headers)


def property_values(props: MessageProperties | None) -> dict[str, Any]:
    """The properties that are set, as plain values (compute once when the same properties go out many times)."""
    return props.model_dump(exclude_none=True) if props is not None else {}


def pika_from_values(values: dict[str, Any], extra_headers: dict[str, Any] | None = None) -> pika.BasicProperties:
    """``pika.BasicProperties`` from :func:`property_values`, with ``extra_headers`` merged in (``values`` is
    left as it was)."""
    fields = dict(values)
    headers = dict(fields.pop("headers", None) or {})
    if extra_headers:
        headers.update(extra_headers)
    return pika.BasicProperties(headers=headers or None, **fields)


def json_safe(value: Any) -> Any:
    """A header value as pika decodes it, made JSON-safe (bytes -> text or base64, Decimal, datetime)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def from_pika(props: pika.BasicProperties | None) -> dict[str, Any]:
    """The properties that are set, as a JSON object (``timestamp`` as epoch seconds).

    This runs for every delivery on the live path, so it reads the instance dict once and leaves the values pika
    already decoded as text or integers as they are (only headers, bytes and datetimes need :func:`json_safe`).
    """
    out: dict[str, Any] = {}
    if props is None:
        return out
    for name, value in vars(props).items():
        if value is None or name not in _PROPERTY_SET:
            continue
        kind = value.__class__
        if kind is not str and kind is not int:
            if name == "timestamp" and isinstance(value, dt.datetime):
                value = int(value.timestamp())
            else:
                value = json_safe(value)
        out[name] = value
    return out


def decode_body(body: str, encoding: str = "utf-8", max_bytes: int | None = None) -> bytes:
    """The bytes to publish: ``body`` as UTF-8 text or as base64; raises :class:`InvalidInput`."""
    if encoding == "utf-8":
        data = body.encode("utf-8")
    elif encoding == "base64":
        try:
            data = base64.b64decode(body.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise InvalidInput("body: not valid base64 (body_encoding is base64)") from None
    else:
        raise InvalidInput(f"body_encoding must be utf-8 or base64, not {encoding!r}")
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidInput(f"body: {len(data)} bytes is over the limit of {max_bytes} bytes")
    return data


# Bytes shown as themselves in a hex dump's text column; every other byte shows as "."
_PRINTABLE = bytes(b if 32 <= b < 127 else ord(".") for b in range(256))
# Control characters that make a body "binary" rather than text (tab, newline and carriage return are text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def hex_dump(data: bytes, width: int = 16) -> str:
    """Offset, hex pairs and printable ASCII, ``width`` bytes a line (like ``hexdump -C``)."""
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        pairs = chunk.hex(" ")
        text = chunk.translate(_PRINTABLE).decode("ascii")
        lines.append(f"{offset:08x}  {pairs:<{width * 3 - 1}}  {text}")
    return "\n".join(lines)


# A JSON string (escapes included; an unterminated one runs to the end), and anything but a bracket.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_depth(text: str, stop_at: int | None = None) -> int:
    """How deeply ``[`` / ``{`` nest in ``text`` (outside strings), without recursion.

    Stops counting once the depth passes ``stop_at`` (the answer is then ``stop_at + 1``). The strings and
    everything but the brackets are cut out by regular expressions first, so the Python loop only walks the
    brackets (it walked every character, half the cost of a JSON body's preview).
    """
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    return deepest
        else:
            depth -= 1
    return deepest


def pretty_json(text: str, max_depth: int = PREVIEW_JSON_DEPTH, max_chars: int = PREVIEW_PRETTY_CHARS) -> str | None:
    """``text`` as indented JSON, or None when it is not JSON, nests deeper than ``max_depth`` or prints longer
    than ``max_chars``."""
    if json_depth(text, stop_at=max_depth) > max_depth:
        return None
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError, OverflowError):
        return None
    return pretty if len(pretty) <= max_chars else None


def body_preview(body: bytes, content_type: str | None = None, limit: int = PREVIEW_BYTES) -> dict[str, Any]:
    """What the browser shows of a body: at most ``limit`` bytes, as text, pretty JSON (when it parses) and hex.

    ``kind`` is ``json``, ``text`` or ``binary``; ``size`` is the full size and ``truncated`` says whether the
    preview is shorter. Everything is plain text for the page to set as text, never markup. ``hex`` (the first
    KiB) is only filled for binary bodies: for text the page draws the same dump from ``text`` itself, which keeps
    a per-message cost off the server's live path (it was two thirds of a delivery's handling time).

    Bounded in size, depth and so in time: JSON nested deeper than :data:`PREVIEW_JSON_DEPTH` or printing longer
    than :data:`PREVIEW_PRETTY_CHARS` is shown as text (``note`` says why), and a body whose preview fails in any
    other way is shown as hex; this never raises for any bytes.
    """
    try:
        return _body_preview(body, content_type, limit)
    except Exception as exc:  # never let one message's body stop whoever previews it
        head = bytes(body)[:limit]
        return {
            "kind": "binary",
            "size": len(body),
            "truncated": len(body) > limit,
            "text": None,
            "json": None,
            "hex": hex_dump(head[:1024]),
            "note": f"preview failed ({type(exc).__name__}); shown as hex",
        }


def _body_preview(body: bytes, content_type: str | None, limit: int) -> dict[str, Any]:
    size = len(body)
    head = body[:limit]
    truncated = size > limit
    text: str | None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut in the middle of a multi-byte character at the limit is still text.
        text = head[: exc.start].decode("utf-8") if truncated and exc.start >= len(head) - 3 else None
    if text is not None and _CONTROL.search(text):
        text = None
    pretty: str | None = None
    note: str | None = None
    if text is not None and not truncated and text.strip():
        looks_json = (content_type or "").endswith("json") or text.lstrip()[:1] in '{["'
        if looks_json:
            if json_depth(text, stop_at=PREVIEW_JSON_DEPTH) > PREVIEW_JSON_DEPTH:
                note = f"JSON nested deeper than {PREVIEW_JSON_DEPTH} levels: shown as text"
            else:
                pretty = pretty_json(text)  # None: not JSON, or too long once indented (shown as text)
    kind = "json" if pretty is not None else "text" if text is not None else "binary"
    preview: dict[str, Any] = {
        "kind": kind,
        "size": size,
        "truncated": truncated,
        "text": text,
        "json": pretty,
        "hex": hex_dump(head[:1024]) if text is None else None,
    }
    if note is not None:
        preview["note"] = note
    return preview
