"""Topic binding keys in a trie, as the broker keeps them (``rabbit_db_topic``): one edge per word, with ``*`` and
``#`` edges; a key is matched by walking it word by word instead of testing every binding.

The walk visits each (node, word position) pair at most once, so ``#.#.#`` patterns cannot blow it up.
"""

from __future__ import annotations

from collections.abc import Iterable

from rabbit.routing.model import HASH, STAR
from rabbit.routing.topic import split_words


class TrieNode:
    __slots__ = ("hash", "star", "values", "words")

    def __init__(self) -> None:
        self.words: dict[str, TrieNode] = {}  # a plain word's edge
        self.star: TrieNode | None = None  # the "*" edge: exactly one word
        self.hash: TrieNode | None = None  # the "#" edge: zero or more words (its node may take more words)
        self.values: list[int] = []  # the bindings whose key ends here


class TopicTrie:
    """Binding keys of one topic exchange; each added key carries a value (the binding's position)."""

    def __init__(self, patterns: Iterable[tuple[str, int]] = ()) -> None:
        self.root = TrieNode()
        self.size = 0
        for pattern, value in patterns:
            self.add(pattern, value)

    def add(self, pattern: str, value: int) -> None:
        node = self.root
        for token in split_words(pattern):
            if token == STAR:
                node.star = node.star or TrieNode()
                node = node.star
            elif token == HASH:
                node.hash = node.hash or TrieNode()
                node = node.hash
            else:
                nxt = node.words.get(token)
                if nxt is None:
                    nxt = node.words[token] = TrieNode()
                node = nxt
        node.values.append(value)
        self.size += 1

    def match(self, key: str) -> set[int]:
        """The values of every binding key that matches the routing key ``key``."""
        words = split_words(key)
        m = len(words)
        found: set[int] = set()
        seen: set[tuple[int, int]] = set()
        # (node, j, after_hash): the node reached having taken the first j words; after_hash: reached by a "#"
        # edge, so it may take more words itself.
        stack: list[tuple[TrieNode, int, bool]] = [(self.root, 0, False)]
        while stack:
            node, j, after_hash = stack.pop()
            mark = (id(node), j)
            if mark in seen:
                continue
            seen.add(mark)
            if j == m:
                found.update(node.values)
            else:
                word = words[j]
                nxt = node.words.get(word)
                if nxt is not None:
                    stack.append((nxt, j + 1, False))
                if node.star is not None:
                    stack.append((node.star, j + 1, False))
                if after_hash:
                    stack.append((node, j + 1, True))
            if node.hash is not None:
                stack.append((node.hash, j, True))
        return found
