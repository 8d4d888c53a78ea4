"""The routing engine, rule by rule: each RabbitMQ edge case by name, the tutorial's examples, and properties.

The same rules are checked against the real broker in tests/integration/test_routing_vs_broker.py.
"""

from __future__ import annotations

import decimal
import json
import re
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rabbit.errors import InvalidInput, LabError
from rabbit.routing import (
    BindingInfo,
    ExchangeInfo,
    UnknownExchange,
    explain_headers,
    explain_topic,
    headers_match,
    route,
    split_words,
    topic_matches,
)


# --------------------------------------------------------------------------- helpers
def queues_for(exchange_type: str, bindings: dict[str, list], key: str = "", headers: dict | None = None) -> set:
    """Bind queue -> [binding keys or argument dicts] on one exchange and route one message."""
    infos = []
    for queue, specs in bindings.items():
        for spec in specs:
            if isinstance(spec, dict):
                infos.append(BindingInfo("x", queue, "queue", "", spec))
            else:
                infos.append(BindingInfo("x", queue, "queue", spec))
    return set(route([ExchangeInfo("x", exchange_type)], infos, "x", key, headers).queues)


def to_queue(source: str, queue: str, key: str = "", args: dict | None = None) -> BindingInfo:
    return BindingInfo(source, queue, "queue", key, args or {})


def to_exchange(source: str, destination: str, key: str = "", args: dict | None = None) -> BindingInfo:
    return BindingInfo(source, destination, "exchange", key, args or {})


# --------------------------------------------------------------------------- topic: words
def test_empty_key_has_no_words():
    assert split_words("") == []
    assert explain_topic("#", "")["words"] == []


def test_a_single_dot_is_two_empty_words():
    assert split_words(".") == ["", ""]


def test_empty_words_count():
    assert split_words("a..b") == ["a", "", "b"]
    assert topic_matches("a.*.b", "a..b")
    assert topic_matches("*.*.*", "a..b")
    assert not topic_matches("a.b", "a..b")


def test_trailing_and_leading_dots_make_empty_words():
    assert split_words("a.") == ["a", ""]
    assert split_words(".a") == ["", "a"]
    assert topic_matches("a.*", "a.")
    assert not topic_matches("a", "a.")
    assert topic_matches("*.a", ".a")
    assert topic_matches("a.", "a.")
    assert not topic_matches("a.", "a")


def test_dots_alone_are_empty_words_a_star_takes():
    assert topic_matches("*.*", ".")
    assert not topic_matches("*", ".")
    assert topic_matches("*.*.*", "..")
    assert topic_matches(".", ".")


def test_topic_is_case_sensitive():
    assert not topic_matches("Orange", "orange")


# --------------------------------------------------------------------------- topic: wildcards
def test_topic_star_matches_exactly_one_word():
    assert topic_matches("a.*", "a.b")
    assert not topic_matches("a.*", "a.b.c")
    assert not topic_matches("a.*", "a")


def test_topic_star_does_not_match_empty_key():
    assert not topic_matches("*", "")


def test_topic_star_matches_one_empty_word():
    assert topic_matches("a.*", "a.")


def test_topic_hash_matches_zero_words():
    assert topic_matches("a.#", "a")
    assert topic_matches("#.a", "a")
    assert topic_matches("a.#.b", "a.b")


def test_topic_hash_matches_many_words():
    assert topic_matches("a.#", "a.b.c.d")
    assert topic_matches("a.#.z", "a.b.c.z")


def test_topic_hash_alone_matches_the_empty_key():
    assert topic_matches("#", "")


def test_empty_pattern_matches_only_the_empty_key():
    assert topic_matches("", "")
    assert not topic_matches("", ".")
    assert not topic_matches("", "a")


def test_hash_hash_matches_everything():
    for key in ["", "a", ".", "a.b.c"]:
        assert topic_matches("#.#", key)


def test_star_hash_star_needs_at_least_two_words():
    assert not topic_matches("*.#.*", "a")
    assert topic_matches("*.#.*", "a.b")
    assert topic_matches("*.#.*", "a.b.c.d")


def test_hash_word_hash_finds_the_word_anywhere():
    assert topic_matches("#.a.#", "a")
    assert topic_matches("#.a.#", "x.y.a")
    assert topic_matches("#.a.#", "a.x")
    assert not topic_matches("#.a.#", "x.y")


def test_hash_then_star_needs_one_word():
    assert not topic_matches("#.*", "")
    assert topic_matches("#.*", "a")
    assert topic_matches("*.#", "a")


def test_star_and_hash_in_a_routing_key_are_plain_words():
    assert not topic_matches("a.b", "a.*")
    assert not topic_matches("a.b", "a.#")
    assert topic_matches("a.*", "a.#")
    assert topic_matches("a.#", "a.*")


def test_a_wildcard_glued_to_letters_is_a_plain_word():
    assert not topic_matches("a*", "ab")
    assert topic_matches("a*", "a*")
    assert not topic_matches("#a", "xa")


# --------------------------------------------------------------------------- the tutorial (tutorial five)
TUTORIAL = [
    ("quick.orange.rabbit", {"Q1", "Q2"}),
    ("lazy.orange.elephant", {"Q1", "Q2"}),
    ("quick.orange.fox", {"Q1"}),
    ("lazy.brown.fox", {"Q2"}),
    ("lazy.pink.rabbit", {"Q2"}),  # two bindings of Q2 match: it gets the message once
    ("quick.brown.fox", set()),
    ("orange", set()),
    ("quick.orange.male.rabbit", set()),
    ("lazy.orange.male.rabbit", {"Q2"}),
]


@pytest.mark.parametrize(("key", "expected"), TUTORIAL)
def test_tutorial_five_examples(key, expected):
    assert queues_for("topic", {"Q1": ["*.orange.*"], "Q2": ["*.*.rabbit", "lazy.#"]}, key) == expected


def test_tutorial_queue_matched_twice_is_listed_once_with_both_bindings():
    exchanges = [ExchangeInfo("x", "topic")]
    bindings = [to_queue("x", "Q2", "*.*.rabbit"), to_queue("x", "Q2", "lazy.#")]
    result = route(exchanges, bindings, "x", "lazy.pink.rabbit")
    assert result.queues == ["Q2"]
    assert [m.binding.routing_key for m in result.matches] == ["*.*.rabbit", "lazy.#"]


# --------------------------------------------------------------------------- topic explanations
def test_explanation_aligns_tokens_with_words():
    e = explain_topic("a.*.#", "a.b.c.d")
    assert e["matched"] is True
    assert e["steps"] == [
        {"token": "a", "words": ["a"], "ok": True},
        {"token": "*", "words": ["b"], "ok": True},
        {"token": "#", "words": ["c", "d"], "ok": True},
    ]
    assert e["text"] == "'a.*.#' matches 'a.b.c.d': a = a, * = b, # = c.d"


def test_explanation_of_hash_taking_zero_words():
    e = explain_topic("a.#", "a")
    assert e["steps"][1] == {"token": "#", "words": [], "ok": True}
    assert "# = (no words)" in e["text"]


def test_explanation_of_a_wrong_word():
    e = explain_topic("*.orange.*", "lazy.pink.rabbit")
    assert e["matched"] is False
    assert e["steps"] == [
        {"token": "*", "words": ["lazy"], "ok": True},
        {"token": "orange", "words": ["pink"], "ok": False},
    ]
    assert e["failed_at"] == {
        "token_index": 1,
        "word_index": 1,
        "reason": "token 'orange' expected word 'orange' but the key has 'pink'",
    }


def test_explanation_of_words_left_over():
    e = explain_topic("*.orange.*", "quick.orange.male.rabbit")
    assert e["failed_at"]["reason"] == "the key has 1 word left that no token takes"
    assert e["failed_at"]["token_index"] == 3
    assert e["failed_at"]["word_index"] == 3
    assert all(step["ok"] for step in e["steps"])


def test_explanation_of_too_few_words():
    e = explain_topic("a.*.#", "a")
    assert e["failed_at"]["reason"].startswith("the pattern needs more words than the key has")
    assert e["steps"][-1] == {"token": "*", "words": [], "ok": False}


def test_explanation_of_star_against_the_empty_key():
    e = explain_topic("*", "")
    assert e["matched"] is False
    assert e["failed_at"]["token_index"] == 0
    assert e["failed_at"]["word_index"] == 0


def test_explanation_of_a_word_no_hash_can_reach():
    e = explain_topic("#.orange.#", "a.b")
    assert e["matched"] is False
    assert "whatever the '#' before it takes" in e["failed_at"]["reason"]
    assert e["steps"][0] == {"token": "#", "words": [], "ok": True}


def test_explanation_of_the_empty_pattern_and_key():
    e = explain_topic("", "")
    assert e["matched"] is True
    assert e["steps"] == []
    assert "neither has any word" in e["text"]


# --------------------------------------------------------------------------- topic properties
key_words = st.sampled_from(["a", "b", "", "ab", "*", "#"])
pattern_words = st.sampled_from(["a", "b", "", "*", "#"])
keys = st.lists(key_words, max_size=7).map(".".join)
patterns = st.lists(pattern_words, max_size=7).map(".".join)


def regex_reference(pattern: str, key: str) -> bool:
    """Each word becomes '.word' so words and the empty key are unambiguous; '#' is any run of such words."""
    encoded = "".join("." + w for w in (key.split(".") if key else []))
    parts = {"*": r"\.[^.]*", "#": r"(?:\.[^.]*)*"}
    regex = "".join(parts.get(t, re.escape("." + t)) for t in (pattern.split(".") if pattern else []))
    return re.fullmatch(regex, encoded) is not None


def recursive_reference(pattern: str, key: str) -> bool:
    """The trie walk of rabbit_exchange_type_topic, on lists: '#' either stops or eats one more word."""
    tokens, words = tuple(pattern.split(".")) if pattern else (), tuple(key.split(".")) if key else ()

    @cache
    def match(t: int, w: int) -> bool:
        if t == len(tokens):
            return w == len(words)
        if tokens[t] == "#":
            return match(t + 1, w) or (w < len(words) and match(t, w + 1))
        return w < len(words) and tokens[t] in ("*", words[w]) and match(t + 1, w + 1)

    return match(0, 0)


@given(keys)
def test_property_hash_alone_matches_every_key(key):
    assert topic_matches("#", key)


@given(patterns, keys)
def test_property_engine_agrees_with_a_regex_and_a_recursive_matcher(pattern, key):
    expected = regex_reference(pattern, key)
    assert recursive_reference(pattern, key) == expected
    assert topic_matches(pattern, key) == expected
    assert explain_topic(pattern, key)["matched"] == expected


@given(patterns, keys)
def test_property_matched_explanation_words_rejoin_to_the_key(pattern, key):
    e = explain_topic(pattern, key)
    if e["matched"]:
        taken = [w for step in e["steps"] for w in step["words"]]
        assert ".".join(taken) == key
        assert [s["token"] for s in e["steps"]] == split_words(pattern)
        for step in e["steps"]:
            assert len(step["words"]) == 1 or step["token"] == "#"


@given(patterns, keys)
def test_property_failed_explanation_points_at_the_first_unmatched_place(pattern, key):
    e = explain_topic(pattern, key)
    if not e["matched"]:
        ok_steps = [s for s in e["steps"] if s["ok"]]
        assert e["steps"][: len(ok_steps)] == ok_steps  # the ok steps come first
        assert len(ok_steps) == e["failed_at"]["token_index"]
        consumed = [w for s in ok_steps for w in s["words"]]
        assert consumed == split_words(key)[: len(consumed)]
        assert len(consumed) == e["failed_at"]["word_index"]
        assert e["text"].endswith(e["failed_at"]["reason"])


def test_long_keys_with_many_hashes_explain_quickly():
    pattern = ".".join(["#"] * 120 + ["z"])
    key = ".".join(["a"] * 127)
    assert explain_topic(pattern, key)["matched"] is False
    assert explain_topic(pattern, key + ".z")["matched"] is True


# --------------------------------------------------------------------------- direct and fanout
def test_direct_requires_exact_equality():
    assert queues_for("direct", {"q": ["a.b"]}, "a.b") == {"q"}
    assert queues_for("direct", {"q": ["a.b"]}, "a.b.") == set()
    assert queues_for("direct", {"q": ["A"]}, "a") == set()


def test_direct_treats_wildcards_as_plain_text():
    assert queues_for("direct", {"q": ["a.#"]}, "a.b") == set()
    assert queues_for("direct", {"q": ["a.#"]}, "a.#") == {"q"}


def test_direct_empty_binding_key_matches_only_the_empty_key():
    assert queues_for("direct", {"q": [""]}, "") == {"q"}
    assert queues_for("direct", {"q": [""]}, "a") == set()


def test_fanout_ignores_the_key():
    assert queues_for("fanout", {"q1": ["whatever"], "q2": [""]}, "other") == {"q1", "q2"}


def test_fanout_with_no_bindings_routes_nowhere():
    result = route([ExchangeInfo("x", "fanout")], [], "x", "k")
    assert result.routed is False
    assert result.queues == []


# --------------------------------------------------------------------------- the default exchange
def test_default_exchange_routes_to_the_queue_named_by_the_key():
    result = route([], [], "", "orders", queues=["orders", "other"])
    assert result.queues == ["orders"]
    assert result.matches[0].binding == BindingInfo("", "orders", "queue", "orders")
    assert result.matches[0].via == ("",)
    assert "the default exchange routes to the queue named by the key" in result.notes


def test_default_exchange_misses_a_queue_that_does_not_exist():
    result = route([], [], "", "nope", queues=["orders"])
    assert result.routed is False
    assert result.misses[0].explanation["queue_exists"] is False


def test_default_exchange_assumes_the_queue_exists_when_queues_are_unknown():
    assert route([], [], "", "anything").queues == ["anything"]


def test_default_exchange_with_the_empty_key_reaches_no_queue():
    assert route([], [], "", "").queues == []


def test_empty_key_on_a_topic_exchange_gets_a_note():
    result = route([ExchangeInfo("x", "topic")], [to_queue("x", "q", "#")], "x", "")
    assert result.queues == ["q"]
    assert any("has no words" in note for note in result.notes)


def test_notes_are_not_repeated():
    exchanges = [ExchangeInfo("a", "fanout"), ExchangeInfo("b", "fanout")]
    bindings = [to_exchange("a", "b"), to_exchange("b", "a"), to_exchange("b", "a", "again"), to_exchange("a", "a")]
    notes = route(exchanges, bindings, "a", "").notes
    assert len(notes) == len(set(notes))


def test_default_exchange_ignores_listed_bindings_of_the_default_exchange():
    listed = [to_queue("", "orders", "orders"), to_queue("", "other", "other")]
    assert route([], listed, "", "orders", queues=["orders", "other"]).queues == ["orders"]


def test_direct_reply_to_address_is_not_a_queue():
    result = route([], [], "", "amq.rabbitmq.reply-to.g1h2AA", queues=[])
    assert result.queues == []
    assert any("direct reply-to" in note for note in result.notes)


# --------------------------------------------------------------------------- headers
def test_headers_all_is_the_default():
    assert headers_match({"a": "1", "b": "2"}, {"a": "1", "b": "2", "c": "3"})
    assert not headers_match({"a": "1", "b": "2"}, {"a": "1"})


def test_headers_any_needs_one():
    assert headers_match({"x-match": "any", "a": "1", "b": "2"}, {"b": "2"})
    assert not headers_match({"x-match": "any", "a": "1", "b": "2"}, {"a": "9"})


def test_headers_all_with_no_arguments_matches_every_message():
    assert headers_match({}, {})
    assert headers_match({"x-match": "all"}, {"a": 1})


def test_headers_any_with_no_arguments_never_matches():
    assert not headers_match({"x-match": "any"}, {"a": 1})
    assert not headers_match({"x-match": "any", "x-a": 1}, {"x-a": 1})


def test_headers_x_arguments_are_ignored_by_all_and_any():
    assert headers_match({"x-a": "1"}, {})
    assert headers_match({"x-match": "all", "x-a": "1", "b": 2}, {"b": 2})
    assert not headers_match({"x-match": "any", "x-a": "1", "b": 2}, {"x-a": "1"})


def test_headers_with_x_forms_compare_x_arguments():
    assert not headers_match({"x-match": "all-with-x", "x-a": "1"}, {})
    assert headers_match({"x-match": "all-with-x", "x-a": "1"}, {"x-a": "1"})
    assert headers_match({"x-match": "any-with-x", "x-a": "1", "b": 2}, {"x-a": "1"})


def test_headers_x_match_itself_is_never_compared():
    assert headers_match({"x-match": "all-with-x"}, {})
    assert not headers_match({"x-match": "any-with-x"}, {"x-match": "any-with-x"})


def test_headers_unknown_x_match_counts_as_all():
    assert headers_match({"x-match": "most", "a": 1}, {"a": 1})
    assert not headers_match({"x-match": "most", "a": 1, "b": 2}, {"a": 1})


def test_headers_void_binding_value_asks_only_for_presence():
    assert headers_match({"a": None}, {"a": "anything"})
    assert headers_match({"a": None}, {"a": None})
    assert not headers_match({"a": None}, {})


def test_headers_void_header_matches_only_a_void_binding_value():
    assert not headers_match({"a": "undefined"}, {"a": None})
    assert not headers_match({"a": ""}, {"a": None})


def test_headers_string_never_equals_a_number():
    assert not headers_match({"a": "1"}, {"a": 1})
    assert not headers_match({"a": 1}, {"a": "1"})


def test_headers_boolean_never_equals_a_number():
    assert not headers_match({"a": True}, {"a": 1})
    assert not headers_match({"a": 0}, {"a": False})
    assert headers_match({"a": True}, {"a": True})


def test_headers_numbers_compare_by_value_whatever_their_width():
    assert headers_match({"a": 2**40}, {"a": 2**40})
    assert not headers_match({"a": 2**40}, {"a": 0})  # a 64-bit long is not cut to 32 bits
    assert headers_match({"a": 1}, {"a": 1.0})  # Erlang's == : a double equals an integer of the same value


def test_headers_decimal_equals_only_a_decimal():
    assert not headers_match({"a": decimal.Decimal("1")}, {"a": 1})
    assert headers_match({"a": decimal.Decimal("1.50")}, {"a": decimal.Decimal("1.5")})


def test_headers_byte_array_equals_the_same_string():
    assert headers_match({"a": b"1"}, {"a": "1"})


def test_headers_arrays_compare_item_types():
    assert headers_match({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not headers_match({"a": ["1"]}, {"a": [b"1"]})
    assert not headers_match({"a": [1]}, {"a": [True]})
    assert not headers_match({"a": [1]}, {"a": [1, 1]})


def test_headers_tables_compare_field_by_field():
    assert headers_match({"a": {"k": 1}}, {"a": {"k": 1}})
    assert not headers_match({"a": {"k": 1}}, {"a": {"k": True}})


def test_headers_explanation_lists_each_check():
    e = explain_headers({"x-match": "all", "format": "pdf", "type": "report"}, {"format": "pdf", "type": 7})
    assert e["matched"] is False
    assert e["x_match"] == "all"
    assert e["checks"] == [
        {"header": "format", "expected": "pdf", "actual": "pdf", "present": True, "ok": True, "reason": "equal"},
        {
            "header": "type",
            "expected": "report",
            "actual": 7,
            "present": True,
            "ok": False,
            "reason": "a number is never equal to a string",
        },
    ]
    assert e["text"].startswith("x-match all: 1 of 2 arguments match")


def test_headers_explanation_of_a_missing_header():
    e = explain_headers({"x-match": "any", "a": 1}, {})
    assert e["checks"][0]["actual"] is None
    assert e["checks"][0]["present"] is False
    assert e["checks"][0]["reason"] == "the header is missing"


def test_headers_explanation_says_which_x_arguments_were_ignored():
    e = explain_headers({"x-match": "any", "x-a": 1}, {})
    assert e["ignored"] == ["x-a", "x-match"]
    assert "never matches" in e["text"]


def test_headers_exchange_ignores_the_routing_key():
    assert queues_for("headers", {"q": [{"a": "1"}]}, "some.key", {"a": "1"}) == {"q"}


def test_headers_bcc_is_removed_before_headers_bindings_see_it():
    assert queues_for("headers", {"q": [{"x-match": "any", "BCC": ["k"]}]}, "", {"BCC": ["k"]}) == set()
    assert queues_for("headers", {"q": [{"x-match": "any", "CC": ["k"]}]}, "", {"CC": ["k"]}) == {"q"}


@given(
    st.dictionaries(st.sampled_from(["a", "b", "x-c"]), st.sampled_from(["1", 1, True, None]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "x-c"]), st.sampled_from(["1", 1, True, None]), max_size=3),
)
def test_property_all_implies_any_when_something_is_compared(args, headers):
    compared = [k for k in args if not k.startswith("x-")]
    if compared and headers_match({**args, "x-match": "all"}, headers):
        assert headers_match({**args, "x-match": "any"}, headers)
    assert headers_match({**args, "x-match": "any"}, headers) == any(
        k in headers and (args[k] is None or explain_headers({k: args[k]}, headers)["matched"]) for k in compared
    )


# --------------------------------------------------------------------------- several bindings, several exchanges
def test_queue_reached_by_two_bindings_gets_one_copy():
    result = route([ExchangeInfo("x", "topic")], [to_queue("x", "q", "a.*"), to_queue("x", "q", "#")], "x", "a.b")
    assert result.queues == ["q"]
    assert len(result.matches) == 2


def test_queues_are_listed_in_first_reached_order():
    bindings = [to_queue("x", "q2", "#"), to_queue("x", "q1", "#"), to_queue("x", "q2", "a")]
    assert route([ExchangeInfo("x", "topic")], bindings, "x", "a").queues == ["q2", "q1"]


def test_misses_list_the_bindings_that_did_not_match():
    bindings = [to_queue("x", "q1", "a"), to_queue("x", "q2", "b")]
    result = route([ExchangeInfo("x", "direct")], bindings, "x", "a")
    assert [m.binding.destination for m in result.misses] == ["q2"]
    assert result.misses[0].via == ("x",)


def test_exchange_to_exchange_continues_with_the_same_key():
    exchanges = [ExchangeInfo("front", "topic"), ExchangeInfo("back", "direct")]
    bindings = [
        to_exchange("front", "back", "orders.#"),
        to_queue("back", "q", "orders.eu"),
        to_queue("back", "r", "x"),
    ]
    result = route(exchanges, bindings, "front", "orders.eu")
    assert result.queues == ["q"]
    assert result.matches[0].destination_type == "exchange"
    assert result.matches[0].via == ("front",)
    assert result.matches[1].via == ("front", "back")
    assert result.misses[0].via == ("front", "back")


def test_exchange_to_exchange_passes_the_headers_on():
    exchanges = [ExchangeInfo("front", "fanout"), ExchangeInfo("back", "headers")]
    bindings = [to_exchange("front", "back"), to_queue("back", "q", args={"kind": "a"})]
    assert route(exchanges, bindings, "front", "", {"kind": "a"}).queues == ["q"]
    assert route(exchanges, bindings, "front", "", {"kind": "b"}).queues == []


def test_exchange_to_exchange_cycle_terminates():
    exchanges = [ExchangeInfo("a", "fanout"), ExchangeInfo("b", "fanout")]
    bindings = [to_exchange("a", "b"), to_exchange("b", "a"), to_queue("b", "q")]
    result = route(exchanges, bindings, "a", "k")
    assert result.queues == ["q"]
    assert any("already visited" in note for note in result.notes)


def test_exchange_bound_to_itself_terminates():
    result = route([ExchangeInfo("a", "fanout")], [to_exchange("a", "a"), to_queue("a", "q")], "a", "")
    assert result.queues == ["q"]


def test_two_paths_to_one_exchange_visit_it_once():
    exchanges = [ExchangeInfo(n, "fanout") for n in ("top", "left", "right", "bottom")]
    bindings = [
        to_exchange("top", "left"),
        to_exchange("top", "right"),
        to_exchange("left", "bottom"),
        to_exchange("right", "bottom"),
        to_queue("bottom", "q"),
    ]
    result = route(exchanges, bindings, "top", "")
    assert result.queues == ["q"]
    assert [m.via for m in result.matches if m.destination == "q"] == [("top", "left", "bottom")]


def test_binding_to_a_missing_exchange_ends_there():
    result = route([ExchangeInfo("a", "fanout")], [to_exchange("a", "gone")], "a", "")
    assert result.queues == []
    assert any("no exchange 'gone'" in note for note in result.notes)


# --------------------------------------------------------------------------- alternate exchanges
def ae_topology(**front_args):
    exchanges = [
        ExchangeInfo("front", "direct", {"alternate-exchange": "ae", **front_args}),
        ExchangeInfo("ae", "fanout"),
        ExchangeInfo("empty", "fanout"),
    ]
    bindings = [to_queue("front", "q", "known"), to_queue("ae", "unrouted")]
    return exchanges, bindings


def test_alternate_exchange_takes_unroutable():
    exchanges, bindings = ae_topology()
    result = route(exchanges, bindings, "front", "unknown")
    assert result.queues == ["unrouted"]
    assert result.alternates == [{"exchange": "front", "alternate": "ae"}]
    assert result.matches[0].via == ("front", "ae")


def test_alternate_exchange_is_not_used_when_a_queue_matches():
    exchanges, bindings = ae_topology()
    result = route(exchanges, bindings, "front", "known")
    assert result.queues == ["q"]
    assert result.alternates == []


def test_alternate_exchange_is_not_used_when_an_exchange_binding_matches_even_if_it_routes_nowhere():
    exchanges, bindings = ae_topology()
    bindings.append(to_exchange("front", "empty", "to-empty"))
    result = route(exchanges, bindings, "front", "to-empty")
    assert result.queues == []
    assert result.alternates == []


def test_missing_alternate_exchange_routes_nowhere():
    exchanges = [ExchangeInfo("front", "direct", {"alternate-exchange": "gone"})]
    result = route(exchanges, [], "front", "k")
    assert result.queues == []
    assert result.alternates == [{"exchange": "front", "alternate": "gone"}]
    assert any("no exchange 'gone'" in note for note in result.notes)


def test_alternate_exchanges_chain():
    exchanges = [
        ExchangeInfo("a", "direct", {"alternate-exchange": "b"}),
        ExchangeInfo("b", "direct", {"alternate-exchange": "c"}),
        ExchangeInfo("c", "fanout"),
    ]
    result = route(exchanges, [to_queue("c", "last")], "a", "k")
    assert result.queues == ["last"]
    assert [a["alternate"] for a in result.alternates] == ["b", "c"]
    assert result.matches[0].via == ("a", "b", "c")


def test_alternate_exchange_cycle_terminates():
    exchanges = [
        ExchangeInfo("a", "direct", {"alternate-exchange": "b"}),
        ExchangeInfo("b", "direct", {"alternate-exchange": "a"}),
    ]
    assert route(exchanges, [], "a", "k").queues == []


def test_alternate_exchange_of_an_exchange_reached_by_binding():
    exchanges = [
        ExchangeInfo("entry", "fanout"),
        ExchangeInfo("inner", "direct", {"alternate-exchange": "ae"}),
        ExchangeInfo("ae", "fanout"),
    ]
    bindings = [to_exchange("entry", "inner"), to_queue("inner", "q", "known"), to_queue("ae", "unrouted")]
    result = route(exchanges, bindings, "entry", "unknown")
    assert result.queues == ["unrouted"]
    assert result.alternates == [{"exchange": "inner", "alternate": "ae"}]
    assert result.matches[-1].via == ("entry", "inner", "ae")


# --------------------------------------------------------------------------- CC and BCC
def test_cc_header_adds_routing_keys():
    bindings = [to_queue("x", "a", "a"), to_queue("x", "b", "b"), to_queue("x", "c", "c")]
    result = route([ExchangeInfo("x", "direct")], bindings, "x", "a", {"CC": ["b"], "BCC": ["c"]})
    assert result.queues == ["a", "b", "c"]
    assert "(by the CC/BCC key 'b')" in result.matches[1].explanation["text"]


def test_cc_on_the_default_exchange_reaches_each_named_queue_once():
    assert route([], [], "", "q1", {"CC": ["q2", "q3", "q1"]}).queues == ["q1", "q2", "q3"]


def test_cc_items_that_are_not_strings_are_skipped():
    assert route([], [], "", "q1", {"CC": [b"q2", 3]}).queues == ["q1"]


def test_cc_that_is_not_an_array_is_refused():
    with pytest.raises(InvalidInput):
        route([ExchangeInfo("x", "direct")], [], "x", "a", {"CC": "b"})


# --------------------------------------------------------------------------- errors, notes, shapes
def test_unknown_exchange_raises_not_found():
    with pytest.raises(UnknownExchange) as info:
        route([ExchangeInfo("x", "direct")], [], "nope", "k")
    assert isinstance(info.value, LabError)
    assert info.value.code == "NOT_FOUND"
    assert info.value.name == "nope"


def test_publishing_to_an_internal_exchange_is_refused_not_routed():
    # The broker answers 403 ACCESS_REFUSED to a publish on an internal exchange: no queue ever gets it.
    result = route([ExchangeInfo("x", "fanout", internal=True)], [to_queue("x", "q")], "x", "")
    assert result.queues == []
    assert result.routed is False
    assert result.refused == "internal exchange"
    answer = result.to_dict()
    assert answer["routed"] is False and answer["refused"] == "internal exchange"
    assert any(note.startswith("refused: internal exchange") for note in answer["notes"])


def test_an_internal_exchange_still_routes_what_reaches_it_through_a_binding():
    exchanges = [ExchangeInfo("front", "fanout"), ExchangeInfo("inner", "fanout", internal=True)]
    bindings = [to_exchange("front", "inner"), to_queue("inner", "q")]
    result = route(exchanges, bindings, "front", "")
    assert result.queues == ["q"] and result.refused is None and result.routed is True


def test_plugin_exchange_type_is_not_predicted():
    result = route([ExchangeInfo("x", "x-consistent-hash")], [to_queue("x", "q", "1")], "x", "k")
    assert result.queues == []
    assert any("plugin type" in note for note in result.notes)


def test_unroutable_message_gets_a_note():
    result = route([ExchangeInfo("x", "direct")], [], "x", "k")
    assert any("no queue takes the message" in note for note in result.notes)


def test_to_dict_has_the_api_shape():
    exchanges = [ExchangeInfo("x", "topic")]
    bindings = [to_queue("x", "q1", "*.orange.*"), to_queue("x", "q2", "lazy.#")]
    answer = route(exchanges, bindings, "x", "quick.orange.rabbit").to_dict()
    assert set(answer) == {
        "routed",
        "queues",
        "matches",
        "misses",
        "alternates",
        "exchange",
        "notes",
        "refused",
        "unknown_bindings",
        "lab_queues",
        "caveats",
        "topology_version",
    }
    assert answer["routed"] is True
    assert answer["queues"] == ["q1"]
    assert answer["exchange"] == "x"
    match = answer["matches"][0]
    assert set(match) == {"binding", "destination", "destination_type", "via", "explanation", "lab"}
    assert match["lab"] is False
    assert match["binding"] == {
        "source": "x",
        "destination": "q1",
        "destination_type": "queue",
        "routing_key": "*.orange.*",
        "arguments": {},
    }
    assert match["via"] == ["x"]
    assert match["explanation"]["matched"] is True
    assert isinstance(match["explanation"]["text"], str)
    miss = answer["misses"][0]
    assert set(miss) == {"binding", "via", "explanation"}
    assert miss["explanation"]["failed_at"]["token_index"] == 0
    json.dumps(answer)  # plain JSON all the way down


def test_to_dict_turns_byte_arrays_and_decimals_into_text():
    bindings = [to_queue("x", "q", args={"a": b"1", "d": decimal.Decimal("1.5")})]
    answer = route([ExchangeInfo("x", "headers")], bindings, "x", "", {"a": "1", "d": decimal.Decimal("1.5")})
    assert answer.queues == ["q"]
    json.dumps(answer.to_dict())


@given(
    st.lists(
        st.tuples(st.sampled_from(["q1", "q2", "q3"]), st.lists(pattern_words, max_size=4).map(".".join)),
        max_size=6,
    ),
    keys,
)
def test_property_queues_are_the_unique_queue_destinations_of_the_matches(specs, key):
    bindings = [to_queue("x", q, p) for q, p in specs]
    result = route([ExchangeInfo("x", "topic")], bindings, "x", key)
    assert result.queues == list(dict.fromkeys(m.destination for m in result.matches))
    assert len(result.matches) + len(result.misses) == len(bindings)
    assert set(result.queues) == {q for q, p in specs if regex_reference(p, key)}


# --------------------------------------------------------------------------- what the lab cannot see, and its own taps
def test_an_exchange_that_exists_with_unknown_bindings_is_neither_404_nor_unroutable():
    result = route([], [], "logs", "k", opaque=["logs"])
    assert result.routed is None
    assert result.queues == []
    assert result.unknown == ["logs"]
    assert "'logs' exists; its bindings are unknown without the management API" in result.to_dict()["notes"]
    assert not any(note.startswith("no queue takes") for note in result.notes)


def test_a_path_into_an_exchange_with_unknown_bindings_leaves_the_answer_open():
    exchanges = [ExchangeInfo("mine", "fanout")]
    bindings = [to_queue("mine", "q"), to_exchange("mine", "theirs")]
    result = route(exchanges, bindings, "mine", "", opaque=["theirs"])
    assert result.routed is True and result.queues == ["q"] and result.unknown == ["theirs"]
    assert any("other queues may get it too" in c for c in result.caveats)
    alone = route([ExchangeInfo("mine", "fanout", {"alternate-exchange": "theirs"})], [], "mine", "", opaque=["theirs"])
    assert alone.routed is None


def test_a_lab_tap_counts_and_is_marked_as_the_labs():
    exchanges = [ExchangeInfo("x", "topic")]
    bindings = [to_queue("x", "orders", "order.*"), to_queue("x", "amq.gen-tap", "#")]
    result = route(exchanges, bindings, "x", "audit.log", lab_queues={"amq.gen-tap": "tap"})
    assert result.queues == ["amq.gen-tap"] and result.routed is True
    assert result.lab_queues == ["amq.gen-tap"]
    assert [m.to_dict()["lab"] for m in result.matches] == [True]
    assert (
        "without the lab's tap this message would be unroutable (mandatory will not return it while the tap is bound)"
        in result.caveats
    )
    taken = route(exchanges, bindings, "x", "order.new", lab_queues={"amq.gen-tap": "tap"})
    assert sorted(taken.queues) == ["amq.gen-tap", "orders"]
    assert {m.destination: m.lab for m in taken.matches} == {"orders": False, "amq.gen-tap": True}
    assert taken.caveats == []


def test_a_lab_tap_that_keeps_the_alternate_exchange_away_says_so():
    exchanges = [ExchangeInfo("x", "direct", {"alternate-exchange": "ae"}), ExchangeInfo("ae", "fanout")]
    bindings = [to_queue("x", "amq.gen-tap", "k"), to_queue("ae", "lost")]
    result = route(exchanges, bindings, "x", "k", lab_queues={"amq.gen-tap": "tap"})
    assert result.queues == ["amq.gen-tap"]
    assert any("without the lab's tap this message would go to 'lost'" in c for c in result.caveats)


def test_an_undefined_value_from_the_management_api_reads_as_a_presence_check_and_says_so():
    # The management API shows a void binding value as "undefined": the broker matches any value there.
    args = {"x-match": "all", "present": "undefined"}
    unclear = route(
        [ExchangeInfo("h", "headers")],
        [BindingInfo("h", "q", "queue", "", args, unclear=("present",))],
        "h",
        "",
        {"present": 7},
    )
    assert unclear.queues == ["q"]
    assert any('"undefined"' in c and "cannot tell" in c for c in unclear.caveats)
    assert unclear.matches[0].explanation["checks"][0]["uncertain"]
    # The same arguments known exactly (a string "undefined") match only that string, with nothing to doubt.
    exact = route([ExchangeInfo("h", "headers")], [to_queue("h", "q", args=args)], "h", "", {"present": 7})
    assert exact.queues == [] and exact.caveats == []
    # A missing header is a certain miss whichever the reading.
    missing = route(
        [ExchangeInfo("h", "headers")],
        [BindingInfo("h", "q", "queue", "", args, unclear=("present",))],
        "h",
        "",
        {},
    )
    assert missing.queues == [] and missing.caveats == []


def test_a_nested_table_from_the_management_api_matches_in_any_order_but_says_the_order_is_unknown():
    shown = {"x-match": "all", "t": {"j": "a", "k": 1}}  # the management API sorts the keys
    binding = BindingInfo("h", "q", "queue", "", shown, unclear=("t",))
    result = route([ExchangeInfo("h", "headers")], [binding], "h", "", {"t": {"k": 1, "j": "a"}})
    assert result.queues == ["q"]
    assert any("declared order" in c for c in result.caveats)
    # Exactly known tables compare in order, as the broker does.
    exact = route([ExchangeInfo("h", "headers")], [to_queue("h", "q", args=shown)], "h", "", {"t": {"k": 1, "j": "a"}})
    assert exact.queues == []
    other = route([ExchangeInfo("h", "headers")], [binding], "h", "", {"t": {"k": 2, "j": "a"}})
    assert other.queues == [] and other.caveats == []
