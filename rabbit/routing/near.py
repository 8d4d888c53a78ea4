"""Near misses: for the bindings a message missed, the smallest change to its routing key or headers that would
make each match, ranked by size, in plain words, each fix checked by routing it through the same exchange.

Topic keys are searched in the exchange's trie with word edits (a word changed, added or dropped; each costs 1),
so a big exchange is not compared binding by binding; direct keys by the table of keys without case and
surrounding spaces; headers binding by binding (one per header value to change).
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Mapping, Set
from typing import Any

from rabbit.errors import LabError
from rabbit.routing.headers import _field, _kind, explain_headers, x_match_mode
from rabbit.routing.index import RoutingIndex, normal_key
from rabbit.routing.model import DEFAULT_EXCHANGE, HASH, STAR, BindingInfo, RouteResult, jsonable
from rabbit.routing.topic import explain_topic, split_words
from rabbit.routing.trie import TrieNode

MAX_WORD_EDITS = 3  # a change bigger than this is no longer "near"
MAX_STATES = 20_000  # the trie search's budget per exchange (a bound on the time one request may take)
FILLER = "x"  # the word put where a `*` needs one
# A word edit tries at most this many of a trie node's words (a node of 10,000 words would cost 20,000 steps
# for a list of ten near misses that any ten of them would fill).
FANOUT_SCAN = 64
DIRECT_SCAN = 2_000  # a direct exchange with more bindings is searched only for case and spaces

_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def _nth(i: int) -> str:
    return _ORDINALS[i] if i < len(_ORDINALS) else f"{i + 1}th"


def _q(text: str) -> str:
    return f"`{text}`"


# --------------------------------------------------------------------------- topic: word edits in the trie
def _trie_search(root: TrieNode, words: list[str], wanted: int, skip: Set[int]) -> list[tuple[int, int, list]]:
    """Bindings reachable from the key with the fewest word edits: ``[(cost, value, edits)]`` by cost.

    A 0-1 breadth-first search over (node, words taken) states; an edit is ``(op, index in the new key, word,
    old word)`` with op "sub", "ins" or "del". Stops once ``wanted`` bindings are found or the budget is spent.
    """
    m = len(words)
    start = (root, 0, False)
    best: dict[tuple[int, int], int] = {(id(root), 0): 0}
    back: dict[tuple[int, int], tuple[tuple[int, int] | None, tuple | None, str | None]] = {
        (id(root), 0): (None, None, None)
    }
    queue: deque[tuple[int, TrieNode, int, bool]] = deque([(0, *start)])
    found: list[tuple[int, int, list]] = []
    taken: set[int] = set()
    states = 0
    while queue and len(found) < wanted and states < MAX_STATES:
        cost, node, j, after_hash = queue.popleft()
        mark = (id(node), j)
        if best.get(mark, cost + 1) < cost:
            continue
        states += 1
        if j == m:
            for value in node.values:
                if value not in skip and value not in taken:
                    taken.add(value)
                    found.append((cost, value, _edits(back, mark)))

        moves: list[tuple[TrieNode, int, bool, int, tuple | None, str | None]] = []
        if node.hash is not None:
            moves.append((node.hash, j, True, 0, None, None))
        if j < m:
            word = words[j]
            if after_hash:
                moves.append((node, j + 1, True, 0, None, word))
            if node.star is not None:
                moves.append((node.star, j + 1, False, 0, None, word))
            exact = node.words.get(word)
            if exact is not None:
                moves.append((exact, j + 1, False, 0, None, word))
            moves.append((node, j + 1, after_hash, 1, ("del", j, word), None))  # drop the key's word j
        for label, nxt in itertools.islice(node.words.items(), FANOUT_SCAN):
            if j < m and label != words[j]:
                moves.append((nxt, j + 1, False, 1, ("sub", j, label), label))
            moves.append((nxt, j, False, 1, ("ins", j, label), label))
        if node.star is not None:
            moves.append((node.star, j, False, 1, ("ins", j, STAR), FILLER))
        for nxt, k, hashed, step, edit, put in moves:
            key = (id(nxt), k)
            total = cost + step
            if total > MAX_WORD_EDITS or best.get(key, MAX_WORD_EDITS + 1) <= total:
                continue
            best[key] = total
            back[key] = (mark, edit, put)
            entry = (total, nxt, k, hashed)
            if step == 0:
                queue.appendleft(entry)
            else:
                queue.append(entry)
    return found


def _edits(back: Mapping, mark: tuple[int, int]) -> list[tuple[tuple, str | None]]:
    """The path to ``mark``: each step's edit (or None) and the word it puts in the new key (or None)."""
    path = []
    while True:
        prev, edit, word = back[mark]
        if prev is None:
            break
        path.append((edit, word))
        mark = prev
    path.reverse()
    return path


def _topic_fix(words: list[str], path: list) -> tuple[str, list[str]]:
    """The fixed key from a search path, and the plain words for each edit."""
    new_words = [w for _, w in path if w is not None]
    texts = []
    position = 0
    for edit, word in path:
        if edit is not None:
            op, _, label = edit[0], edit[1], edit[2]
            if op == "sub":
                texts.append(_substitution(words[edit[1]], label, position))
            elif op == "ins":
                texts.append(
                    f"one word short: `*` needs a {_nth(position)} word"
                    if label == STAR
                    else f"one word short: the binding wants {_q(label)} as the {_nth(position)} word"
                )
            else:
                texts.append(f"one word too many: nothing in the binding takes {_q(label)} (word {edit[1] + 1})")
        if word is not None:
            position += 1
    return ".".join(new_words), texts


def _substitution(old: str, new: str, position: int) -> str:
    where = f"the {_nth(position)} word"
    if old in (STAR, HASH):
        return f"{_q(old)} in a routing key is a plain word, not a wildcard: the binding wants {_q(new)} as {where}"
    if old.casefold() == new.casefold():
        return f"{where} is {_q(old)}, the binding wants {_q(new)} (keys are case-sensitive)"
    if old.strip() == new:
        return f"{where} {_q(old)} has spaces around it; the binding wants {_q(new)}"
    return f"{where} is {_q(old)}, the binding wants {_q(new)}"


def _hash_star_confusion(pattern: str, key: str) -> str | None:
    """A `*` that would match as `#` (it was asked to take no word or several)."""
    tokens = split_words(pattern)
    for i, token in enumerate(tokens):
        if token == STAR:
            widened = ".".join([*tokens[:i], HASH, *tokens[i + 1 :]])
            if explain_topic(widened, key)["matched"]:
                return f"`*` takes exactly one word: the binding would need `#` at token {i + 1} to take this key"
    return None


def _space_or_case(key: str, wanted: str) -> str:
    """How ``key`` differs from ``wanted`` when only surrounding spaces or case tell them apart."""
    parts = []
    if key != key.strip() or wanted != wanted.strip():
        if key.rstrip() != key and key.lstrip() == key:
            parts.append("trailing space in the routing key")
        elif key.lstrip() != key and key.rstrip() == key:
            parts.append("leading space in the routing key")
        elif key.strip() != key:
            parts.append("spaces around the routing key")
        else:
            parts.append(f"the binding key {_q(wanted)} has spaces around it")
    if key.strip() != wanted.strip():
        parts.append(f"the case differs: {_q(key.strip())} vs {_q(wanted.strip())} (keys are case-sensitive)")
    return "; ".join(parts)


def _variant_text(key: str, variant: str) -> str:
    """What taking the spaces off ``key`` or changing its case (into ``variant``) changed, in words."""
    parts = []
    if variant == variant.strip() and key != key.strip():
        parts.append(_space_or_case(key, key.strip()))
    if variant.strip() != key.strip():
        parts.append(
            f"the case differs: {_q(key.strip())} would match as {_q(variant.strip())} (keys are case-sensitive)"
        )
    return "; ".join(parts)


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


def _word_edits(words: list[str], wanted: list[str]) -> tuple[int, list[str]]:
    """The fewest word changes, additions and removals from ``words`` to ``wanted``, in plain words."""
    n, m = len(words), len(wanted)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                table[i][j] = i + j
            else:
                same = words[i - 1] == wanted[j - 1]
                table[i][j] = min(table[i - 1][j - 1] + (not same), table[i - 1][j] + 1, table[i][j - 1] + 1)
    texts: list[str] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and table[i][j] == table[i - 1][j - 1] + (words[i - 1] != wanted[j - 1]):
            if words[i - 1] != wanted[j - 1]:
                texts.append(_substitution(words[i - 1], wanted[j - 1], j - 1))
            i, j = i - 1, j - 1
        elif j > 0 and table[i][j] == table[i][j - 1] + 1:
            texts.append(f"one word short: the binding wants {_q(wanted[j - 1])} as the {_nth(j - 1)} word")
            j -= 1
        else:
            texts.append(f"one word too many: the binding has no {_q(words[i - 1])} (word {i})")
            i -= 1
    texts.reverse()
    return table[n][m], texts


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
