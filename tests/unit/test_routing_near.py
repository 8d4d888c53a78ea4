"""Near misses: the smallest change that would make a missed binding match, named in plain words, each fix routed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rabbit.routing import BindingInfo, ExchangeInfo, route


def near(exchanges, bindings, exchange, key, headers=None, limit=20):
    return route(exchanges, bindings, exchange, key, headers, explain_misses=0, near_misses=limit).near_misses


def by_key(found):
    return {n["binding"]["routing_key"]: n for n in found}


TUTORIAL = [
    BindingInfo("animals", "q1", "queue", "*.orange.*"),
    BindingInfo("animals", "q2", "queue", "*.*.rabbit"),
    BindingInfo("animals", "q2", "queue", "lazy.#"),
    BindingInfo("animals", "q3", "queue", "lazy.*"),
]
ANIMALS = [ExchangeInfo("animals", "topic")]


def test_a_topic_key_one_word_short_of_a_star():
    found = by_key(near(ANIMALS, TUTORIAL, "animals", "quick.orange"))
    star = found["*.orange.*"]
    assert star["distance"] == 1
    assert "one word short: `*` needs a third word" in star["difference"]
    assert star["fix"]["routing_key"].startswith("quick.orange.")
    assert "q1" in route(ANIMALS, TUTORIAL, "animals", star["fix"]["routing_key"]).queues
    assert "one word short: the binding wants `rabbit` as the third word" in found["*.*.rabbit"]["difference"]
    assert found["*.*.rabbit"]["fix"]["routing_key"] == "quick.orange.rabbit"


def test_a_topic_key_one_word_long_names_the_star_that_should_be_a_hash():
    found = by_key(near(ANIMALS, TUTORIAL, "animals", "lazy.brown.fox"))
    assert "lazy.#" not in found  # it matches: no near miss for it
    star = found["lazy.*"]
    assert star["distance"] == 1
    assert "`*` takes exactly one word" in star["difference"] and "`#`" in star["difference"]
    assert "one word too many" in star["difference"]
    assert star["fix"]["routing_key"] == "lazy.brown"


def test_near_misses_are_ranked_by_size():
    found = near(ANIMALS, TUTORIAL, "animals", "quick.brown.fox")
    distances = [n["distance"] for n in found]
    assert distances == sorted(distances)
    assert by_key(found)["lazy.*"]["distance"] == 2
    assert by_key(found)["lazy.*"]["difference"].startswith("2 word edits: ")


def test_a_wildcard_in_the_routing_key_is_named_as_a_plain_word():
    bindings = [BindingInfo("animals", "q", "queue", "quick.orange")]
    (found,) = near(ANIMALS, bindings, "animals", "quick.*")
    assert "`*` in a routing key is a plain word, not a wildcard" in found["difference"]
    assert found["fix"]["routing_key"] == "quick.orange"


def test_direct_keys_that_differ_by_case_or_surrounding_spaces():
    exchanges = [ExchangeInfo("d", "direct")]
    bindings = [BindingInfo("d", "orders", "queue", "orders"), BindingInfo("d", "other", "queue", "refunds")]
    spaced, other = near(exchanges, bindings, "d", "orders ")
    assert other["binding"]["routing_key"] == "refunds"  # a word away too, named after the closer one
    assert spaced["difference"] == "trailing space in the routing key"
    assert spaced["distance"] == 1
    assert spaced["fix"] == {"routing_key": "orders", "headers": {}}
    cased = near(exchanges, bindings, "d", "Orders")[0]
    assert "the case differs" in cased["difference"] and "`Orders`" in cased["difference"]
    assert near(exchanges, bindings, "d", " orders")[0]["difference"] == "leading space in the routing key"


def test_topic_keys_that_differ_by_case_or_spaces():
    (found,) = near(ANIMALS, TUTORIAL[:1], "animals", "Quick.Orange.Fox")
    assert found["distance"] == 1
    assert "case-sensitive" in found["difference"]
    assert found["fix"]["routing_key"] == "quick.orange.fox"
    assert near(ANIMALS, TUTORIAL[:1], "animals", "quick.orange.fox ") == []  # `*` takes "fox " as it is
    fox = [BindingInfo("animals", "q", "queue", "*.orange.fox")]
    (spaced,) = near(ANIMALS, fox, "animals", "quick.orange.fox ")
    assert spaced["difference"] == "trailing space in the routing key"


def test_a_header_of_the_wrong_case_or_type():
    exchanges = [ExchangeInfo("h", "headers")]
    bindings = [
        BindingInfo("h", "pdf", "queue", "", {"format": "pdf"}),
        BindingInfo("h", "one", "queue", "", {"x-match": "any", "n": 1, "m": 2}),
    ]
    found = {n["binding"]["destination"]: n for n in near(exchanges, bindings, "h", "", {"format": "PDF", "n": "1"})}
    assert found["pdf"]["difference"] == "header `format` is `PDF`, the binding wants `pdf`"
    assert found["pdf"]["distance"] == 1
    assert found["pdf"]["fix"]["headers"] == {"format": "pdf", "n": "1"}
    assert found["one"]["distance"] == 1
    assert '`"1"` (a string)' in found["one"]["difference"] and "`1` (a number)" in found["one"]["difference"]
    assert "one" in route(exchanges, bindings, "h", "", found["one"]["fix"]["headers"]).queues


def test_every_header_an_all_binding_misses_counts():
    exchanges = [ExchangeInfo("h", "headers")]
    bindings = [BindingInfo("h", "q", "queue", "", {"a": "1", "b": "2", "c": None})]
    (found,) = near(exchanges, bindings, "h", "", {"a": "1"})
    assert found["distance"] == 2
    assert "header `b` is missing, the binding wants `2`" in found["difference"]
    assert "q" in route(exchanges, bindings, "h", "", found["fix"]["headers"]).queues


def test_bindings_reached_through_an_exchange_binding_are_near_misses_too():
    exchanges = [ExchangeInfo("front", "topic"), ExchangeInfo("back", "direct")]
    bindings = [BindingInfo("front", "back", "exchange", "#"), BindingInfo("back", "q", "queue", "orders")]
    (found,) = near(exchanges, bindings, "front", "Orders")
    assert found["via"] == ["front", "back"]
    assert found["fix"]["routing_key"] == "orders"


def test_a_fix_the_upstream_binding_would_not_pass_is_not_offered():
    exchanges = [ExchangeInfo("front", "topic"), ExchangeInfo("back", "direct")]
    bindings = [BindingInfo("front", "back", "exchange", "Orders"), BindingInfo("back", "q", "queue", "orders")]
    assert near(exchanges, bindings, "front", "Orders") == []


def test_the_default_exchange_names_a_queue_that_differs_by_case():
    found = route([], [], "", "Hello", queues=["hello"], near_misses=5).near_misses
    assert [n["fix"]["routing_key"] for n in found] == ["hello"]
    assert "case" in found[0]["difference"]


words = st.sampled_from(["a", "b", "c", "", "A", "b "])
pattern_words = st.sampled_from(["a", "b", "c", "", "*", "#"])
keys = st.lists(words, max_size=5).map(".".join)
patterns = st.lists(pattern_words, max_size=5).map(".".join)


@given(st.lists(patterns, min_size=1, max_size=8), keys, st.sampled_from(["topic", "direct"]), st.booleans())
def test_property_a_fix_offered_routes_and_a_matched_binding_is_never_a_near_miss(pattern_list, key, kind, hop):
    exchanges = [ExchangeInfo("x", "topic"), ExchangeInfo("y", kind)]
    bindings = [BindingInfo("x", f"q{i}", "queue", p) for i, p in enumerate(pattern_list[:4])]
    bindings += [BindingInfo("y", f"r{i}", "queue", p) for i, p in enumerate(pattern_list[4:])]
    if hop:
        bindings.append(BindingInfo("x", "y", "exchange", "#"))
    result = route(exchanges, bindings, "x", key, near_misses=50)
    matched = [m.binding.to_dict() for m in result.matches]
    for found in result.near_misses:
        assert found["binding"] not in matched
        assert found["distance"] >= 1
        assert found["difference"]
        fixed = route(exchanges, bindings, "x", found["fix"]["routing_key"], found["fix"]["headers"])
        assert found["binding"] in [m.binding.to_dict() for m in fixed.matches]
        assert found["binding"]["destination"] in fixed.queues or found["binding"]["destination_type"] == "exchange"


header_values = st.sampled_from(["pdf", "PDF", 1, "1", True, None, 2])
header_maps = st.dictionaries(st.sampled_from(["format", "n", "x-k"]), header_values, max_size=3)


@given(st.lists(header_maps, min_size=1, max_size=4), st.sampled_from(["all", "any", None]), header_maps)
def test_property_a_headers_fix_routes(arg_maps, mode, headers):
    exchanges = [ExchangeInfo("h", "headers")]
    bindings = [
        BindingInfo("h", f"q{i}", "queue", "", {**args, **({"x-match": mode} if mode else {})})
        for i, args in enumerate(arg_maps)
    ]
    result = route(exchanges, bindings, "h", "", headers, near_misses=10)
    matched = [m.binding.to_dict() for m in result.matches]
    for found in result.near_misses:
        assert found["binding"] not in matched
        fixed = route(exchanges, bindings, "h", "", found["fix"]["headers"])
        assert found["binding"]["destination"] in fixed.queues


def test_a_direct_key_a_word_away_from_a_binding_key():
    exchanges = [ExchangeInfo("d", "direct")]
    bindings = [BindingInfo("d", "eu", "queue", "orders.eu"), BindingInfo("d", "all", "queue", "orders")]
    found = {n["binding"]["routing_key"]: n for n in near(exchanges, bindings, "d", "orders.us")}
    assert found["orders.eu"]["difference"] == "the second word is `us`, the binding wants `eu`"
    assert found["orders"]["difference"] == "one word too many: the binding has no `us` (word 2)"
    assert [n["distance"] for n in found.values()] == [1, 1]


def test_a_node_of_ten_thousand_words_does_not_make_the_search_slow():
    import time

    from rabbit.routing import RoutingIndex, route_indexed

    exchanges = [ExchangeInfo("x", "topic")]
    bindings = [BindingInfo("x", f"q{i % 100}", "queue", f"order-{i}") for i in range(10_000)]
    index = RoutingIndex(exchanges, bindings)
    route_indexed(index, "x", "warm.up", explain_misses=0, near_misses=10)
    started = time.perf_counter()
    found = route_indexed(index, "x", "foo", explain_misses=0, near_misses=10).near_misses
    assert time.perf_counter() - started < 0.05  # about 1 ms here; 20,000 edits tried would be 30 ms and more
    assert len(found) == 10 and all(n["distance"] == 1 for n in found)
