"""Word edits for near misses: the fewest words to change, add or drop in a routing key so that a binding key
takes it (searched in a topic exchange's trie, or against one direct binding key), and those edits in plain words."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Set

from rabbit.routing.model import HASH, STAR
from rabbit.routing.topic import explain_topic, split_words
from rabbit.routing.trie import TrieNode

MAX_WORD_EDITS = 3  # a change bigger than this is no longer "near"
MAX_STATES = 20_000  # the trie search's budget per exchange (a bound on the time one request may take)
FILLER = "x"  # the word put where a `*` needs one
# A word edit tries at most this many of a trie node's words (a node of 10,000 words would cost 20,000 steps
# for a list of ten near misses that any ten of them would fill).
FANOUT_SCAN = 64

_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def _nth(i: int) -> str:
    return _ORDINALS[i] if i < len(_ORDINALS) else f"{i + 1}th"


def _q(text: str) -> str:
    return f"`{text}`"


# --------------------------------------------------------------------------- topic: word edits in the trie
def _trie_search(root: TrieNode, words: list[str], wanted: int, skip: Set[int]) -> list[tuple[int, int, list]]:
    """Bindings reachable from the key with the fewest word edits: ``[(cost, value, edits)]`` by cost.

    A 0-1 breadth-first search over (node, words taken) states; an edit is ``(op, index of the key's word, word)``
    with op "sub", "ins" or "del". Stops once ``wanted`` bindings are found or the budget is spent.
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
