"""Predict and explain where RabbitMQ routes a message, exactly as the broker does (pure: no I/O).

The rules follow RabbitMQ 3.10's own code, read from the beams installed here and checked by the differential
test in ``tests/integration/test_routing_vs_broker.py``:

- ``rabbit_exchange:route/2``: the default exchange ``""`` delivers to the queue named by the key; any other
  exchange is walked with its exchange-to-exchange bindings, each exchange at most once, and the queues found are
  de-duplicated. An exchange whose own bindings give no destination at all (neither a queue nor an exchange)
  hands the message to its ``alternate-exchange``.
- ``rabbit_basic:make_message/4``: the routing keys are the published key plus the longstr items of the ``CC``
  and ``BCC`` array headers; ``BCC`` is removed from the headers before any exchange sees them.
- ``rabbit_exchange_type_topic``: a key splits on ``.`` into words (empty words count, the empty key has none);
  ``*`` takes exactly one word, ``#`` zero or more.
- ``rabbit_exchange_type_headers``: ``x-match`` is ``all`` (also when absent), ``any``, ``all-with-x`` or
  ``any-with-x``; ``x-match`` itself is never compared, other ``x-`` arguments only by the ``-with-x`` forms; a
  void binding value asks only for the header's presence; values compare with Erlang's ``==`` after the AMQP
  decoding (numbers by value whatever their width, strings equal to byte arrays, booleans never equal numbers).
"""

from __future__ import annotations

import datetime as _dt
import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rabbit.errors import InvalidInput, LabError

DEFAULT_EXCHANGE = ""
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")
DIRECT_REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."
HASH = "#"  # takes zero or more words
STAR = "*"  # takes exactly one word


class UnknownExchange(LabError):
    """The message is published to an exchange the topology does not hold (the broker says NOT_FOUND)."""

    code = "NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"no exchange '{name}' in the topology", details={"exchange": name})
        self.name = name


@dataclass(frozen=True)
class ExchangeInfo:
    name: str
    type: str  # "direct" | "fanout" | "topic" | "headers"
    arguments: Mapping[str, Any] = field(default_factory=dict)  # may hold "alternate-exchange"
    internal: bool = False

    @property
    def alternate(self) -> str | None:
        value = self.arguments.get("alternate-exchange") if self.arguments else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class BindingInfo:
    source: str  # exchange name
    destination: str
    destination_type: str  # "queue" | "exchange"
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    # Argument keys whose value a listing may have changed: the management API shows a void value as the string
    # "undefined" and sorts the keys of a nested table (the broker compares tables in their order).
    unclear: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        record = {
            "source": self.source,
            "destination": self.destination,
            "destination_type": self.destination_type,
            "routing_key": self.routing_key,
            "arguments": jsonable(dict(self.arguments or {})),
        }
        if self.unclear:
            record["arguments_unclear"] = list(self.unclear)
        return record


@dataclass(frozen=True)
class Match:
    binding: BindingInfo
    via: tuple[str, ...]
    explanation: dict[str, Any]
    lab: bool = False  # the destination is one of the lab's own queues (a tap's), not an application's

    @property
    def destination(self) -> str:
        return self.binding.destination

    @property
    def destination_type(self) -> str:
        return self.binding.destination_type

    def to_dict(self) -> dict[str, Any]:
        return {
            "binding": self.binding.to_dict(),
            "destination": self.destination,
            "destination_type": self.destination_type,
            "via": list(self.via),
            "explanation": self.explanation,
            "lab": self.lab,
        }


@dataclass(frozen=True)
class Miss:
    binding: BindingInfo
    via: tuple[str, ...]
    explanation: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"binding": self.binding.to_dict(), "via": list(self.via), "explanation": self.explanation}


@dataclass
class RouteResult:
    exchange: str
    queues: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    misses: list[Miss] = field(default_factory=list)
    alternates: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: str | None = None  # why the broker refuses the publish itself ("internal exchange")
    unknown: list[str] = field(default_factory=list)  # exchanges reached that exist but whose bindings are unknown
    lab_queues: list[str] = field(default_factory=list)  # the lab's own queues among ``queues`` (taps)
    caveats: list[str] = field(default_factory=list)  # what qualifies this prediction (also in ``notes``)
    topology_version: str | None = None  # set by the caller: which topology the prediction used

    @property
    def routed(self) -> bool | None:
        """True: some queue takes it; False: none does (or the broker refuses it); None: the lab cannot tell."""
        if self.refused is not None:
            return False
        if self.queues:
            return True
        return None if self.unknown else False

    def caveat(self, text: str) -> None:
        if text not in self.caveats:
            self.caveats.append(text)
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "routed": self.routed,
            "queues": list(self.queues),
            "matches": [m.to_dict() for m in self.matches],
            "misses": [m.to_dict() for m in self.misses],
            "alternates": [dict(a) for a in self.alternates],
            "exchange": self.exchange,
            "notes": list(self.notes),
            "refused": self.refused,
            "unknown_bindings": list(self.unknown),
            "lab_queues": list(self.lab_queues),
            "caveats": list(self.caveats),
            "topology_version": self.topology_version,
        }


# --------------------------------------------------------------------------- topic
def split_words(key: str) -> list[str]:
    """The words of a routing or binding key, as the broker splits them: ``""`` has none, ``"."`` has two."""
    return key.split(".") if key else []


def topic_matches(pattern: str, key: str) -> bool:
    """Whether the binding key ``pattern`` matches the routing key ``key`` (a word-by-word table, no backtracking)."""
    tokens, words = split_words(pattern), split_words(key)
    # reach[j]: the first i tokens can take exactly the first j words.
    reach = [True] + [False] * len(words)
    for token in tokens:
        if token == HASH:
            nxt, seen = [], False
            for j in range(len(words) + 1):
                seen = seen or reach[j]
                nxt.append(seen)
        else:
            nxt = [False] + [reach[j] and (token == STAR or token == words[j]) for j in range(len(words))]
        reach = nxt
        if not any(reach):
            return False
    return reach[len(words)]


def _quote(word: str) -> str:
    return f"'{word}'"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def explain_topic(pattern: str, key: str) -> dict[str, Any]:
    """Align each token of ``pattern`` with the words of ``key`` it takes, or say where the match fails.

    A ``#`` takes as few words as it can. A non-match is reported at the furthest point any alignment
    reaches: the first token no alignment gets past, or the words left over after the last token.
    """
    tokens, words = split_words(pattern), split_words(key)
    n, m = len(tokens), len(words)

    def takes(token: str, j: int) -> bool:  # can a one-word token take word j?
        return j < m and (token == STAR or token == words[j])

    # ahead[i][j]: tokens i.. take exactly words j.. ; behind[i][j]: tokens ..i take exactly words ..j.
    ahead = [[False] * (m + 1) for _ in range(n + 1)]
    ahead[n][m] = True
    for i in range(n - 1, -1, -1):
        later = False
        for j in range(m, -1, -1):
            if tokens[i] == HASH:
                later = later or ahead[i + 1][j]
                ahead[i][j] = later
            else:
                ahead[i][j] = takes(tokens[i], j) and ahead[i + 1][j + 1]
    behind = [[False] * (m + 1) for _ in range(n + 1)]
    behind[0][0] = True
    for i in range(n):
        earlier = False
        for j in range(m + 1):
            if tokens[i] == HASH:
                earlier = earlier or behind[i][j]
                behind[i + 1][j] = earlier
            elif j > 0:
                behind[i + 1][j] = behind[i][j - 1] and takes(tokens[i], j - 1)

    result: dict[str, Any] = {
        "type": "topic",
        "matched": ahead[0][0],
        "pattern": pattern,
        "routing_key": key,
        "tokens": tokens,
        "words": words,
    }
    if ahead[0][0]:
        steps, j = [], 0
        for i, token in enumerate(tokens):
            end = next(k for k in range(j, m + 1) if ahead[i + 1][k]) if token == HASH else j + 1
            steps.append({"token": token, "words": words[j:end], "ok": True})
            j = end
        result["steps"] = steps
        if not steps:
            result["text"] = "the empty binding key matches only the empty routing key: neither has any word"
        else:
            parts = ", ".join(f"{s['token']} = {_show_words(s['words'])}" for s in steps)
            result["text"] = f"{_quote(pattern)} matches {_quote(key)}: {parts}"
        return result

    i = max(k for k in range(n + 1) if any(behind[k]))
    reachable = [j for j in range(m + 1) if behind[i][j]]
    wildcard_before = "#" in tokens[:i]
    if i == n:
        j = max(reachable)
        reason = f"the key has {_plural(m - j, 'word')} left that no token takes"
        failing_step = None
    else:
        token = tokens[i]
        with_word = [j for j in reachable if j < m]
        if token != STAR and with_word:
            j = with_word[0]
            reason = f"token {_quote(token)} expected word {_quote(token)} but the key has {_quote(words[j])}"
            if len(with_word) > 1 or wildcard_before:
                reason += f" (and whatever the '#' before it takes, no {_quote(token)} comes next)"
            failing_step = {"token": token, "words": [words[j]], "ok": False}
        else:
            j = m
            reason = f"the pattern needs more words than the key has (token {_quote(token)} finds no word left)"
            failing_step = {"token": token, "words": [], "ok": False}
    steps: list[dict[str, Any]] = []
    at = j
    for k in range(i - 1, -1, -1):  # walk back from the failure to the start
        start = max(s for s in range(at + 1) if behind[k][s]) if tokens[k] == HASH else at - 1
        steps.append({"token": tokens[k], "words": words[start:at], "ok": True})
        at = start
    steps.reverse()
    if failing_step is not None:
        steps.append(failing_step)
    result["steps"] = steps
    result["failed_at"] = {"token_index": i, "word_index": j, "reason": reason}
    result["text"] = f"{_quote(pattern)} does not match {_quote(key)}: {reason}"
    return result


def _show_words(words: list[str]) -> str:
    if not words:
        return "(no words)"
    return ".".join(words) if all(words) else ".".join(words) + f" ({_plural(len(words), 'word')})"


# --------------------------------------------------------------------------- headers
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


# --------------------------------------------------------------------------- direct, fanout, default
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


# --------------------------------------------------------------------------- the walk
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
) -> RouteResult:
    """Every queue a message published to ``exchange`` reaches, by which bindings and hops, and why.

    ``opaque``: exchanges known to exist (a passive declare said so) whose type and bindings are unknown; a
    message reaching one makes ``routed`` None unless some queue is found anyway. ``lab_queues``: the lab's own
    queues (queue -> what it is, e.g. ``"tap"``): they count, as on the broker, and are marked as the lab's.
    """
    bindings = list(bindings)
    exchanges = list(exchanges)
    result = _walk(exchanges, bindings, exchange, routing_key, headers, queues, set(opaque))
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
        mine = [b for b in bindings if not (b.destination_type == "queue" and b.destination in lab)]
        alone = _walk(exchanges, mine, exchange, routing_key, headers, queues, set(opaque))
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
    return result


def _walk(
    exchanges: list[ExchangeInfo],
    bindings: list[BindingInfo],
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None,
    queues: Iterable[str] | None,
    opaque: set[str],
) -> RouteResult:
    by_name = {x.name: x for x in exchanges}
    headers = dict(headers or {})
    queue_names = None if queues is None else set(queues)
    result = RouteResult(exchange=exchange)
    keys, key_notes = _routing_keys(routing_key, headers)
    result.notes.extend(key_notes)
    seen_headers = {k: v for k, v in headers.items() if k != "BCC"}
    if exchange == DEFAULT_EXCHANGE:
        _route_default(result, keys, queue_names)
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
    by_source: dict[str, list[BindingInfo]] = {}
    for binding in bindings:
        by_source.setdefault(binding.source, []).append(binding)

    seen = {exchange}
    work: list[tuple[ExchangeInfo, tuple[str, ...]]] = [(start, (exchange,))]
    while work:
        current, via = work.pop(0)
        dests: list[BindingInfo] = []
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
        for binding in by_source.get(current.name, []):
            if current.type == "fanout":
                explanation = _explain_fanout()
            elif current.type == "headers":
                explanation = explain_headers(binding.arguments, seen_headers, binding.unclear)
                if explanation.get("uncertain"):
                    end = f"{_quote(binding.source)} -> {_quote(binding.destination)}"
                    result.caveat(f"the binding {end} may decide otherwise: {explanation['uncertain']}")
            else:
                explanation = _explain_keys(current.type, binding, keys)
            if explanation["matched"]:
                result.matches.append(Match(binding, via, explanation))
                dests.append(binding)
            else:
                result.misses.append(Miss(binding, via, explanation))
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
    if not result.queues and not result.unknown:
        result.notes.append("no queue takes the message: the broker drops it (or returns it if published mandatory)")
    elif result.unknown and result.queues:
        result.caveat("other queues may get it too, through the exchanges whose bindings are unknown")
    result.notes = list(dict.fromkeys(result.notes))
    return result


def _reach_opaque(result: RouteResult, name: str) -> None:
    result.unknown.append(name)
    result.caveat(f"{_quote(name)} exists; its bindings are unknown without the management API")


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy of an AMQP field value (byte arrays as text, decimals and dates as strings)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
