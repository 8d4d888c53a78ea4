"""Near misses: for the bindings a message missed, the smallest change to its routing key or headers that would
make each match, ranked by size, in plain words, each fix checked by routing it through the same exchange.

Topic keys are searched in the exchange's trie with word edits (a word changed, added or dropped; each costs 1),
so a big exchange is not compared binding by binding (:mod:`rabbit.routing.near_words`); direct keys by the table
of keys without case and surrounding spaces, and by word edits on exchanges of up to ``DIRECT_SCAN`` bindings;
headers binding by binding (one per header value to change).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Set
from typing import Any

from rabbit.errors import LabError
from rabbit.routing.headers import _field, _kind, explain_headers, x_match_mode
from rabbit.routing.index import RoutingIndex, normal_key
from rabbit.routing.model import DEFAULT_EXCHANGE, BindingInfo, RouteResult, jsonable
from rabbit.routing.near_words import (
    MAX_WORD_EDITS,
    _hash_star_confusion,
    _q,
    _space_or_case,
    _topic_fix,
    _trie_search,
    _variant_text,
    _word_edits,
)
from rabbit.routing.topic import split_words

DIRECT_SCAN = 2_000  # a direct exchange with more bindings is searched only for case and spaces


# --------------------------------------------------------------------------- headers
def _headers_fix(binding: BindingInfo, headers: Mapping[str, Any]) -> tuple[int, str, dict[str, Any]] | None:
    """The fewest header values to change so that a headers binding matches: (count, words, new headers)."""
    explanation = explain_headers(binding.arguments, headers, binding.unclear)
    failed = [c for c in explanation["checks"] if not c["ok"]]
    if explanation["matched"] or not explanation["checks"]:
        return None
    mode = x_match_mode(binding.arguments)
    # For "any" one value is enough: a header the message has, but wrong, is the nearer one to name.
    chosen = failed if mode.startswith("all") else sorted(failed, key=lambda c: not c["present"])[:1]
    fixed = dict(headers)
    texts = []
    for check in chosen:
        name = check["header"]
        expected = binding.arguments[name]
        fixed[name] = "" if expected is None else expected
        texts.append(_header_difference(name, expected, headers))
    return len(chosen), "; ".join(texts), fixed


def _header_difference(name: str, expected: Any, headers: Mapping[str, Any]) -> str:
    want = _shown(expected)
    if name not in headers:
        if expected is None:
            return f"header {_q(name)} is missing (the binding asks only that it is there)"
        return f"header {_q(name)} is missing, the binding wants {want}"
    actual = headers[name]
    if _kind(actual) != _kind(expected):
        return (
            f"header {_q(name)} is {_shown(actual, True)} (a {_kind(actual)}), "
            f"the binding wants {_shown(expected, True)} (a {_kind(expected)})"
        )
    if isinstance(actual, str) and isinstance(expected, str):
        if actual.casefold() == expected.casefold():
            return f"header {_q(name)} is {_q(actual)}, the binding wants {_q(expected)}"
        if actual.strip() == expected.strip():
            return f"header {_q(name)} is {_q(actual)} with spaces around it, the binding wants {_q(expected)}"
    if _field(actual)[0] != _field(expected)[0]:
        return f"header {_q(name)} is {_shown(actual)}, the binding wants {want} (another type)"
    return f"header {_q(name)} is {_shown(actual)}, the binding wants {want}"


def _shown(value: Any, typed: bool = False) -> str:
    """A value in backticks; ``typed``: a string in quotes, so that `"1"` and `1` look different."""
    value = jsonable(value)
    return _q(value if isinstance(value, str) and not typed else json.dumps(value, ensure_ascii=False))


# --------------------------------------------------------------------------- putting it together
Candidate = tuple[int, BindingInfo, tuple[str, ...], str, dict[str, Any]]  # distance, binding, via, words, change


def find_near_misses(
    index: RoutingIndex,
    result: RouteResult,
    routing_key: str,
    headers: dict[str, Any],
    limit: int,
    *,
    queue_names: Set[str] | None,
    opaque: set[str],
) -> list[dict[str, Any]]:
    """Up to ``limit`` near misses for the message of ``result``, smallest first, each fix verified by routing."""
    candidates: list[Candidate] = []
    if result.exchange == DEFAULT_EXCHANGE:
        candidates += _default_candidates(index, routing_key)
    for name, via, matched in result.visited:
        kind = index.exchanges[name].type
        listed = index.by_source.get(name, [])
        if kind == "topic" and len(matched) < len(listed):
            candidates += _topic_candidates(index, name, via, matched, routing_key, limit)
        elif kind == "direct" and len(matched) < len(listed):
            candidates += _direct_candidates(index, name, via, matched, routing_key)
        elif kind == "headers":
            candidates += _headers_candidates(listed, via, matched, headers)
    ranked = sorted(enumerate(candidates), key=lambda c: (c[1][0], c[0]))  # by size, then as walked
    near: list[dict[str, Any]] = []
    for _, (distance, binding, via, text, change) in ranked:
        if len(near) >= limit:
            break
        fix = {
            "routing_key": change.get("routing_key", routing_key),
            "headers": jsonable(change.get("headers", headers)),
        }
        shown = binding.to_dict()
        if any(n["binding"] == shown for n in near) or not _routes(
            index, result.exchange, fix, binding, queue_names, opaque
        ):
            continue
        near.append({"binding": shown, "via": list(via), "distance": distance, "difference": text, "fix": fix})
    return near


def _routes(
    index: RoutingIndex,
    exchange: str,
    fix: dict[str, Any],
    binding: BindingInfo,
    queue_names: Set[str] | None,
    opaque: set[str],
) -> bool:
    """Whether publishing ``fix`` to ``exchange`` really reaches ``binding`` (the engine checks its own advice)."""
    from rabbit.routing.walk import _walk

    try:
        check = _walk(
            index, exchange, fix["routing_key"], fix["headers"], queue_names, opaque, explain_misses=0, explain=False
        )
    except LabError:  # a fix the broker would refuse (a CC header made invalid...): not offered
        return False
    return any(m.binding is binding or m.binding == binding for m in check.matches)


def _default_candidates(index: RoutingIndex, routing_key: str) -> list[Candidate]:
    """Queues whose name differs from the key only by case or surrounding spaces."""
    found: list[Candidate] = []
    for name in index.queues_normal().get(normal_key(routing_key), []) if index.queues else []:
        if name != routing_key:
            binding = BindingInfo(DEFAULT_EXCHANGE, name, "queue", name)
            text = f"no queue is named {_q(routing_key)}: {_space_or_case(routing_key, name)}"
            found.append((1, binding, (DEFAULT_EXCHANGE,), text, {"routing_key": name}))
    return found


def _topic_candidates(
    index: RoutingIndex, name: str, via: tuple[str, ...], matched: frozenset[int], routing_key: str, limit: int
) -> list[Candidate]:
    """The key without its spaces or in lower case first (one change each), then the trie's word edits."""
    trie = index.trie(name)
    assert trie is not None
    listed = index.by_source[name]
    found: list[Candidate] = []
    plain: set[int] = set()
    for variant in dict.fromkeys([routing_key.strip(), routing_key.casefold(), routing_key.strip().casefold()]):
        if variant != routing_key:
            for i in sorted(trie.match(variant) - matched - plain):
                plain.add(i)
                found.append((1, listed[i], via, _variant_text(routing_key, variant), {"routing_key": variant}))
    words = split_words(routing_key)
    for cost, i, path in _trie_search(trie.root, words, limit + len(plain), matched | plain):
        if cost == 0:
            continue
        fixed, texts = _topic_fix(words, path)
        confusion = _hash_star_confusion(listed[i].routing_key, routing_key)
        text = "; ".join([confusion, *texts] if confusion else texts)
        if cost > 1:
            text = f"{cost} word edits: {text}"
        found.append((cost, listed[i], via, text, {"routing_key": fixed}))
    return found


def _direct_candidates(
    index: RoutingIndex, name: str, via: tuple[str, ...], matched: frozenset[int], routing_key: str
) -> list[Candidate]:
    """Keys that differ only by case or surrounding spaces (one change), then, on an exchange of at most
    ``DIRECT_SCAN`` bindings, every other binding key within ``MAX_WORD_EDITS`` word edits."""
    listed = index.by_source[name]
    found: list[Candidate] = []
    close = {i for i in index.direct_normal(name).get(normal_key(routing_key), []) if i not in matched}
    for i in sorted(close):
        wanted = listed[i].routing_key
        found.append((1, listed[i], via, _space_or_case(routing_key, wanted), {"routing_key": wanted}))
    if len(listed) > DIRECT_SCAN:
        return found
    words = split_words(routing_key)
    for i, binding in enumerate(listed):
        if i in matched or i in close:
            continue
        cost, texts = _word_edits(words, split_words(binding.routing_key))
        if 0 < cost <= MAX_WORD_EDITS:
            text = "; ".join(texts)
            if cost > 1:
                text = f"{cost} word edits: {text}"
            found.append((cost, binding, via, text, {"routing_key": binding.routing_key}))
    return found


def _headers_candidates(
    listed: list[BindingInfo], via: tuple[str, ...], matched: frozenset[int], headers: dict[str, Any]
) -> list[Candidate]:
    seen_headers = {k: v for k, v in headers.items() if k != "BCC"}  # the broker removes BCC before routing
    found: list[Candidate] = []
    for i, binding in enumerate(listed):
        if i in matched:
            continue
        fix = _headers_fix(binding, seen_headers)
        if fix is not None:
            count, text, fixed = fix
            if "BCC" in headers:
                fixed["BCC"] = headers["BCC"]
            found.append((count, binding, via, text, {"headers": fixed}))
    return found
