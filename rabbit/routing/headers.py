"""Headers exchanges (``rabbit_exchange_type_headers``): ``x-match`` is ``all`` (also when absent), ``any``,
``all-with-x`` or ``any-with-x``; ``x-match`` itself is never compared, other ``x-`` arguments only by the
``-with-x`` forms; a void binding value asks only for the header's presence; values compare with Erlang's ``==``
after the AMQP decoding (numbers by value whatever their width, strings equal to byte arrays, booleans never equal
numbers). Also how the management API's view of a value may differ from what the broker holds."""

from __future__ import annotations

import datetime as _dt
import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rabbit.routing.model import X_MATCH_MODES, _plural, jsonable


@dataclass(frozen=True)
class _Atom:
    """An Erlang atom: equal only to the same atom (so ``true`` is never ``1``)."""

    name: str


_VOID = _Atom("undefined")


def _field(value: Any) -> tuple[_Atom, Any]:
    """The ``{Type, Value}`` the broker holds once pika has encoded ``value`` and the broker decoded it."""
    if isinstance(value, str):
        return _Atom("longstr"), value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return _Atom("binary"), bytes(value)
    if isinstance(value, bool):
        return _Atom("bool"), _Atom("true" if value else "false")
    if isinstance(value, int):
        return _Atom("signedint" if -(2**31) <= value < 2**31 else "long"), value
    if isinstance(value, float):
        return _Atom("double"), value
    if isinstance(value, decimal.Decimal):
        exponent = value.normalize().as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return _Atom("decimal"), (scale, int(value * (decimal.Decimal(10) ** scale)) & 0xFFFFFFFF)
    if isinstance(value, _dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
        return _Atom("timestamp"), int(stamp.timestamp())
    if isinstance(value, Mapping):
        return _Atom("table"), [(str(k).encode("utf-8"), *_field(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return _Atom("array"), [_field(v) for v in value]
    if value is None:
        return _Atom("void"), _VOID
    return _Atom("unknown"), repr(value)


def _kind(value: Any) -> str:
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | decimal.Decimal):
        return "number"
    if isinstance(value, str | bytes | bytearray):
        return "string"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def x_match_mode(binding_args: Mapping[str, Any] | None) -> str:
    """The binding's ``x-match``; like the broker, anything but the four known strings means ``all``."""
    value = (binding_args or {}).get("x-match")
    if isinstance(value, bytes):  # a byte array is not a longstr: the broker refuses such a binding
        return "all"
    return value if value in X_MATCH_MODES else "all"


MANAGEMENT_VOID = "undefined"  # how the management API shows a void table value


class _Either:
    """A value the management view shows as "undefined": a void value or that string (equal to either)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Either)

    def __hash__(self) -> int:
        return 0


def _loose(value: Any) -> Any:
    """``value`` as the management view keeps it: table keys in no order, void and "undefined" alike."""
    if value is None or value == MANAGEMENT_VOID:
        return _Either()
    if isinstance(value, Mapping):
        return ("table", tuple(sorted(((str(k).encode("utf-8"), _loose(v)) for k, v in value.items()), key=_first)))
    if isinstance(value, list | tuple):
        return ("array", tuple(_loose(v) for v in value))
    return _field(value)[1]


def same_in_management_view(a: Any, b: Any) -> bool:
    """Whether the management API shows the two values (tables of binding arguments, say) alike."""
    return _loose(a) == _loose(b)


def _first(pair: tuple[bytes, Any]) -> bytes:
    return pair[0]


def blurred_by_management(value: Any) -> bool:
    """Whether the management view may show ``value`` other than the broker holds it."""
    if value == MANAGEMENT_VOID:
        return True
    if isinstance(value, Mapping):
        return len(value) > 1 or any(blurred_by_management(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(blurred_by_management(v) for v in value)
    return False


def _unclear_check(key: str, expected: Any, actual: Any, present: bool) -> tuple[bool, str, str | None]:
    """(ok, reason, uncertain) for a binding value the management view may have changed.

    The best reading: "undefined" is a void value (a presence check: nobody binds that string on purpose) and a
    nested table was declared in the order the message uses. ``uncertain`` says what the other reading would do.
    """
    if expected == MANAGEMENT_VOID:
        as_string = present and _field(actual)[1] == _field(MANAGEMENT_VOID)[1]
        reason = "the header is present (read as a void binding value: a presence check)"
        if not present:
            return False, "the header is missing", None
        if as_string:
            return True, reason, None
        return (
            True,
            reason,
            f"the management API shows '{key}' as \"undefined\": a void value (a presence check, which matches) "
            'or the string "undefined" (which does not match this header); the lab cannot tell which',
        )
    if not present:
        return False, "the header is missing", None
    if _loose(expected) != _loose(actual):
        return False, "different value", None
    return (
        True,
        "equal (as far as the management view shows)",
        f"the management API sorts the keys of the nested table '{key}' (and shows a void value as \"undefined\"): "
        "the broker compares tables in their declared order, so this matches only if the binding was declared "
        "in the order the message uses",
    )


def _header_checks(
    binding_args: Mapping[str, Any] | None, headers: Mapping[str, Any] | None, unclear: Iterable[str] = ()
):
    mode = x_match_mode(binding_args)
    with_x = mode.endswith("-with-x")
    headers = headers or {}
    unclear = set(unclear)
    checks, ignored = [], []
    for key in sorted(binding_args or {}, key=lambda k: k.encode("utf-8")):
        expected = binding_args[key]
        if key == "x-match" or (key.startswith("x-") and not with_x):
            ignored.append(key)
            continue
        present = key in headers
        actual = headers.get(key)
        uncertain = None
        if key in unclear and blurred_by_management(expected):
            ok, reason, uncertain = _unclear_check(key, expected, actual, present)
        elif not present:
            ok, reason = False, "the header is missing"
        elif expected is None:
            ok, reason = True, "the header is present (a void binding value asks only for presence)"
        elif _field(expected)[1] == _field(actual)[1]:
            ok, reason = True, "equal"
        else:
            ok, reason = False, "different value"
            if _kind(expected) != _kind(actual):
                reason = f"a {_kind(actual)} is never equal to a {_kind(expected)}"
        check = {
            "header": key,
            "expected": jsonable(expected),
            "actual": jsonable(actual) if present else None,
            "present": present,
            "ok": ok,
            "reason": reason,
        }
        if uncertain:
            check["uncertain"] = uncertain
        checks.append(check)
    return mode, checks, ignored


def headers_match(
    binding_args: Mapping[str, Any] | None, headers: Mapping[str, Any] | None, unclear: Iterable[str] = ()
) -> bool:
    """Whether a headers-exchange binding with ``binding_args`` takes a message with ``headers``."""
    mode, checks, _ = _header_checks(binding_args, headers, unclear)
    return _decide(mode, checks)


def _decide(mode: str, checks: list[dict[str, Any]]) -> bool:
    """``all``: every compared argument matches (so none at all matches); ``any``: at least one does."""
    if mode.startswith("all"):
        return all(c["ok"] for c in checks)
    return any(c["ok"] for c in checks)


def explain_headers(
    binding_args: Mapping[str, Any] | None, headers: Mapping[str, Any] | None, unclear: Iterable[str] = ()
) -> dict[str, Any]:
    mode, checks, ignored = _header_checks(binding_args, headers, unclear)
    matched = _decide(mode, checks)
    given = "x-match" in (binding_args or {})
    label = f"x-match {mode}" if given else "x-match not given (so all)"
    good = sum(c["ok"] for c in checks)
    if not checks:
        text = (
            f"{label} with no argument to compare matches every message"
            if mode.startswith("all")
            else f"{label} with no argument to compare never matches"
        )
    else:
        need = "all must match" if mode.startswith("all") else "one is enough"
        failed = [c for c in checks if not c["ok"]]
        detail = f"; first miss: '{failed[0]['header']}': {failed[0]['reason']}" if failed and not matched else ""
        text = f"{label}: {good} of {_plural(len(checks), 'argument')} match ({need}){detail}"
    if ignored and not mode.endswith("-with-x"):
        text += f"; x- arguments are not compared: {', '.join(ignored)}"
    explanation = {
        "type": "headers",
        "matched": matched,
        "x_match": mode,
        "checks": checks,
        "ignored": ignored,
        "text": text,
    }
    # Would the other reading of an unclear value (see _unclear_check) turn the decision around?
    flipped = [{**c, "ok": not c["ok"]} if c.get("uncertain") else c for c in checks]
    if _decide(mode, flipped) != matched:
        explanation["uncertain"] = "; ".join(c["uncertain"] for c in checks if c.get("uncertain"))
    return explanation
