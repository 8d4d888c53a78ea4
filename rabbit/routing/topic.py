"""Topic exchanges (``rabbit_exchange_type_topic``): a key splits on ``.`` into words (empty words count, the
empty key has none); ``*`` takes exactly one word, ``#`` zero or more."""

from __future__ import annotations

from typing import Any

from rabbit.routing.model import HASH, STAR, _plural, _quote


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


def _alignments(tokens: list[str], words: list[str]) -> tuple[list[list[bool]], list[list[bool]]]:
    """``(ahead, behind)``: ``ahead[i][j]``: tokens i.. take exactly words j.. ; ``behind[i][j]``: tokens ..i take
    exactly words ..j (the tables :func:`explain_topic` reads its alignment and its failure point from)."""
    n, m = len(tokens), len(words)

    def takes(token: str, j: int) -> bool:  # can a one-word token take word j?
        return j < m and (token == STAR or token == words[j])

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
    return ahead, behind


def explain_topic(pattern: str, key: str) -> dict[str, Any]:
    """Align each token of ``pattern`` with the words of ``key`` it takes, or say where the match fails.

    A ``#`` takes as few words as it can. A non-match is reported at the furthest point any alignment
    reaches: the first token no alignment gets past, or the words left over after the last token.
    """
    tokens, words = split_words(pattern), split_words(key)
    n, m = len(tokens), len(words)

    ahead, behind = _alignments(tokens, words)

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
