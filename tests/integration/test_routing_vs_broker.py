"""The routing engine against the real broker: random bindings and messages, the broker's deliveries as the truth.

Each hypothesis example declares one exchange and a few queues under fresh names, binds them with generated
binding keys (or headers arguments), publishes many messages, then one end marker per queue through the default
exchange. Messages on one channel reach a queue in publish order, so once every queue has given its marker, every
copy the broker routed has arrived: no sleeps. Each published message is one routing decision, counted.
"""

from __future__ import annotations

import decimal
import itertools
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pika
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from rabbit.routing import BindingInfo, ExchangeInfo, route

pytestmark = pytest.mark.broker

END = b"--end--"
MIN_DECISIONS = 2000
DRAIN_TIMEOUT = 30.0  # a safety net for a lost marker, not a speed assertion
# No shrinking: every shrink step is a broker round trip, and a failure already prints the exact key, headers
# and bindings that disagree.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]

# --------------------------------------------------------------------------- the broker side


Message = tuple[str, str, dict[str, Any]]  # (exchange, routing key, headers)


@dataclass
class Lab:
    """One pika connection; declares a throw-away topology per example, publishes, and removes it again."""

    connection: pika.BlockingConnection
    channel: Any = None
    decisions: Counter = field(default_factory=Counter)

    def fresh_channel(self) -> Any:
        if self.channel is None or not self.channel.is_open:
            self.channel = self.connection.channel()
        return self.channel

    def check(
        self,
        exchanges: list[ExchangeInfo],
        queues: list[str],
        bindings: list[BindingInfo],
        messages: list[Message],
        *,
        counter: str,
        publish_headers: Callable[[dict[str, Any]], dict[str, Any]] = lambda h: h,
    ) -> list[set[str]]:
        """Declare, publish, collect; assert the engine's queue set equals the broker's for every message.

        Returns the set of queues the broker delivered each message to.
        """
        channel = self.fresh_channel()
        try:
            for x in exchanges:
                channel.exchange_declare(x.name, x.type, arguments=dict(x.arguments) or None)
            for name in queues:
                channel.queue_declare(name, exclusive=True)
            for b in bindings:
                bind = channel.queue_bind if b.destination_type == "queue" else channel.exchange_bind
                bind(b.destination, b.source, routing_key=b.routing_key, arguments=dict(b.arguments) or None)
            delivered = self._publish_and_collect(channel, queues, messages, publish_headers)
        finally:
            self._cleanup(exchanges, queues)

        for index, (exchange, key, headers) in enumerate(messages):
            predicted = route(exchanges, bindings, exchange, key, headers, queues=queues).queues
            got = delivered.get(index, Counter())
            assert all(n == 1 for n in got.values()), f"a queue got more than one copy of message {index}: {got}"
            assert set(predicted) == set(got), _disagreement(exchanges, bindings, messages[index], predicted, got)
            assert len(predicted) == len(set(predicted))
            self.decisions[counter] += 1
        return [set(delivered.get(index, ())) for index in range(len(messages))]

    def _publish_and_collect(
        self,
        channel: Any,
        queues: list[str],
        messages: list[Message],
        publish_headers: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[int, Counter]:
        delivered: dict[int, Counter] = defaultdict(Counter)
        ended: set[str] = set()
        tags = {}

        def on_message(_ch: Any, method: Any, _props: Any, body: bytes) -> None:
            queue = tags[method.consumer_tag]
            if body == END:
                ended.add(queue)
            else:
                delivered[int(body)][queue] += 1

        for name in queues:
            tags[channel.basic_consume(name, on_message, auto_ack=True)] = name
        for index, (exchange, key, headers) in enumerate(messages):
            props = pika.BasicProperties(headers=publish_headers(headers)) if headers else None
            channel.basic_publish(exchange, key, str(index).encode(), props)
        for name in queues:
            channel.basic_publish("", name, END)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while len(ended) < len(queues) and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.05)
        assert len(ended) == len(queues), "the end markers did not all come back"
        for tag in tags:
            channel.basic_cancel(tag)
        return delivered

    def _cleanup(self, exchanges: list[ExchangeInfo], queues: list[str]) -> None:
        for name in queues:
            self.fresh_channel().queue_delete(name)
        for x in exchanges:
            self.fresh_channel().exchange_delete(x.name)


def _disagreement(exchanges, bindings, message, predicted, got) -> str:
    exchange, key, headers = message
    lines = [f"engine {sorted(predicted)} != broker {sorted(got)} for {exchange!r} key {key!r} headers {headers!r}"]
    lines += [f"  exchange {x.name} {x.type} {dict(x.arguments)}" for x in exchanges]
    lines += [
        f"  {b.source} -> {b.destination} ({b.destination_type}) {b.routing_key!r} {b.arguments!r}" for b in bindings
    ]
    return "\n".join(lines)


def _names(kind: str, count: int) -> list[str]:
    token = uuid.uuid4().hex[:10]
    return [f"rl-test-routing-{kind}{i}-{token}" for i in range(count)]


def one_exchange(
    lab: Lab,
    exchange_type: str,
    queue_count: int,
    bindings: list[tuple[int, str, dict[str, Any]]],
    messages: list[tuple[str, dict[str, Any]]],
    **kwargs: Any,
) -> list[set[int]]:
    """One exchange of ``exchange_type`` with ``queue_count`` queues bound by (queue index, key, arguments).

    Returns, per message, the indexes of the queues the broker delivered it to.
    """
    [exchange] = _names(exchange_type, 1)
    queues = _names("q", queue_count)
    infos = [BindingInfo(exchange, queues[q], "queue", key, args) for q, key, args in bindings]
    messages_ = [(exchange, k, h) for k, h in messages]
    delivered = lab.check([ExchangeInfo(exchange, exchange_type)], queues, infos, messages_, **kwargs)
    return [{queues.index(q) for q in got} for got in delivered]


@pytest.fixture(scope="module")
def lab(broker_url: str) -> Iterator[Lab]:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        yield Lab(connection)
    finally:
        connection.close()


# --------------------------------------------------------------------------- topic
KEY_WORDS = ["a", "b", ""]
PATTERN_WORDS = ["a", "b", "", "*", "#"]


def _keys_up_to(words: list[str], length: int) -> list[str]:
    """Every distinct key of up to ``length`` words over ``words`` ("" once: one empty word is the empty key)."""
    keys = {".".join(p) for n in range(length + 1) for p in itertools.product(words, repeat=n)}
    return sorted(keys)


ALL_SHORT_KEYS = _keys_up_to(KEY_WORDS, 4)  # 120 keys, every one published in every example

patterns = st.lists(st.sampled_from(PATTERN_WORDS), max_size=6).map(".".join)
odd_keys = st.lists(st.sampled_from([*KEY_WORDS, "*", "#", "ab"]), min_size=3, max_size=7).map(".".join)


EDGE_PATTERNS = ["", ".", "..", "*", "#", "#.#", "*.*", "*.#.*", "#.a.#", "#.*", "*.#", "a.", ".a", "a..b", ".#",
                 "#.", "a.#.b", "a.*", "#.#.a"]  # fmt: skip
# One queue per edge pattern, so a wrong prediction for one pattern cannot hide behind another on the same queue.
EDGE_CASE = (len(EDGE_PATTERNS), [(i, p, {}) for i, p in enumerate(EDGE_PATTERNS)], [*ALL_SHORT_KEYS, "#", "*", "a.#"])


@st.composite
def topic_cases(draw: st.DrawFn) -> tuple[int, list[tuple[int, str, dict]], list[str]]:
    queue_count = draw(st.integers(2, 6))
    bindings = draw(
        st.lists(st.tuples(st.integers(0, queue_count - 1), patterns), min_size=1, max_size=10, unique=True)
    )
    extra = draw(st.lists(odd_keys, max_size=20))  # longer keys, with '*' and '#' as literal words
    return queue_count, [(q, k, {}) for q, k in bindings], ALL_SHORT_KEYS + extra


def test_broker_empty_key_has_no_words_and_empty_pattern_matches_only_it(lab: Lab) -> None:
    patterns = ["", "*", "#", "*.*"]
    keys = ["", ".", "a"]
    got = one_exchange(
        lab, "topic", 4, [(i, p, {}) for i, p in enumerate(patterns)], [(k, {}) for k in keys], counter="named"
    )
    by_key = {key: {patterns[i] for i in queues} for key, queues in zip(keys, got, strict=True)}
    assert by_key == {"": {"", "#"}, ".": {"#", "*.*"}, "a": {"*", "#"}}


def test_broker_headers_any_with_nothing_to_compare_never_matches(lab: Lab) -> None:
    args = [{}, {"x-match": "any"}, {"x-match": "any", "x-a": 1}, {"x-match": "all-with-x", "x-a": 1}]
    got = one_exchange(lab, "headers", 4, [(i, "", a) for i, a in enumerate(args)], [("", {"x-a": 1})], counter="named")
    assert got == [{0, 3}]


def test_topic_routing_agrees_with_the_broker(lab: Lab) -> None:
    @settings(
        derandomize=False,
        deadline=None,
        max_examples=20,
        phases=PHASES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=topic_cases())
    @example(case=EDGE_CASE)
    def check(case: tuple[int, list[tuple[int, str, dict]], list[str]]) -> None:
        queue_count, bindings, keys = case
        one_exchange(lab, "topic", queue_count, bindings, [(k, {}) for k in keys], counter="topic")

    check()
    assert lab.decisions["topic"] >= MIN_DECISIONS, lab.decisions


# --------------------------------------------------------------------------- headers
# Values pika can encode (no float: pika 1.4 refuses it), chosen to collide across types.
VALUES: list[Any] = [
    "1",
    "",
    "true",
    b"1",
    1,
    0,
    2**40,
    True,
    False,
    None,
    decimal.Decimal("1"),
    decimal.Decimal("1.50"),
    decimal.Decimal("1.5"),
    [1],
    ["1"],
    [b"1"],
    {"k": 1},
    {"k": True},
]
HEADER_NAMES = ["h1", "h2", "x-h"]
X_MATCH = [None, "all", "any", "all-with-x", "any-with-x"]


def _publishable(value: Any) -> Any:
    # pika sends a Decimal as its normalised value; copy the dicts so nothing is shared between messages.
    return dict(value) if isinstance(value, Mapping) else value


@st.composite
def binding_args(draw: st.DrawFn) -> dict[str, Any]:
    args = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), st.sampled_from(VALUES), max_size=3))
    mode = draw(st.sampled_from(X_MATCH))
    if mode is not None:
        args["x-match"] = mode
    return args


message_headers = st.dictionaries(
    st.sampled_from([*HEADER_NAMES, "x-match", "h3"]), st.sampled_from([*VALUES, "any", "all-with-x"]), max_size=4
)


EDGE_ARGS: list[dict[str, Any]] = [
    {},
    {"x-match": "any"},
    {"x-match": "all-with-x"},
    {"x-match": "any-with-x"},
    {"x-h": "1"},
    {"x-h": "1", "x-match": "any"},
    {"x-h": "1", "x-match": "all-with-x"},
    {"x-h": "1", "x-match": "any-with-x"},
    {"h1": "1", "x-h": "1", "x-match": "all-with-x"},
    {"h1": "1", "h2": 1, "x-match": "any"},
    {"h1": "1", "h2": 1},
    *({"h1": value} for value in VALUES),
]
EDGE_HEADERS: list[dict[str, Any]] = [
    {},
    {"x-h": "1"},
    {"x-match": "any"},
    {"x-match": "all-with-x"},
    {"h1": "1", "x-h": "1"},
    {"h1": "1", "h2": 1},
    {"h2": 1},
    *({"h1": value} for value in VALUES),
]
# One queue per edge binding: each x-match corner and each value type against each value type.
EDGE_HEADERS_CASE = (len(EDGE_ARGS), [(i, "", a) for i, a in enumerate(EDGE_ARGS)], EDGE_HEADERS)


@st.composite
def headers_cases(draw: st.DrawFn) -> tuple[int, list[tuple[int, str, dict]], list[dict]]:
    queue_count = draw(st.integers(2, 6))
    bindings = draw(st.lists(st.tuples(st.integers(0, queue_count - 1), binding_args()), min_size=1, max_size=10))
    headers = draw(st.lists(message_headers, min_size=110, max_size=130))
    return queue_count, [(q, "", args) for q, args in bindings], headers


def test_headers_routing_agrees_with_the_broker(lab: Lab) -> None:
    @settings(
        derandomize=False,
        deadline=None,
        max_examples=20,
        phases=PHASES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(case=headers_cases())
    @example(case=EDGE_HEADERS_CASE)
    def check(case: tuple[int, list[tuple[int, str, dict]], list[dict]]) -> None:
        queue_count, bindings, headers = case
        messages = [("", h) for h in headers]
        one_exchange(
            lab,
            "headers",
            queue_count,
            bindings,
            messages,
            counter="headers",
            publish_headers=lambda h: {k: _publishable(v) for k, v in h.items()},
        )

    check()
    assert lab.decisions["headers"] >= MIN_DECISIONS, lab.decisions


# --------------------------------------------------------------------------- exchange graphs
ROUTE_KEYS = ["", "a", "b", "a.b", "b.a", "c"]
BIND_KEYS = ["", "a", "b", "a.b", "*", "#", "a.*", "#.b"]
GRAPH_ARGS: list[dict[str, Any]] = [
    {},
    {"k": "a"},
    {"x-match": "any", "k": "b", "j": "a"},
    {"x-match": "any", "BCC": ["a"]},  # the broker strips BCC before any exchange sees the headers
    {"CC": ["b"]},
]
GRAPH_HEADERS: list[dict[str, Any]] = [
    {},
    {"k": "a"},
    {"j": "a"},
    {"CC": ["b"]},
    {"BCC": ["a"]},
    {"CC": ["a", "c"], "BCC": ["b"]},
    {"k": "b", "CC": []},
]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[ExchangeInfo], list[str], list[BindingInfo], list[Message]]:
    """A few exchanges of all four types bound to each other (cycles too), alternate exchanges, some missing;
    messages to them and to the default exchange, some with CC/BCC keys."""
    n_x, n_q = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    names = _names("x", n_x + 1)  # the last one is never declared: a missing destination or alternate
    queues = _names("q", n_q)
    exchanges = []
    for name in names[:n_x]:
        kind = draw(st.sampled_from(["direct", "fanout", "topic", "headers"]))
        alternate = draw(st.one_of(st.none(), st.sampled_from(names)))
        exchanges.append(ExchangeInfo(name, kind, {"alternate-exchange": alternate} if alternate else {}))
    bindings = []
    for _ in range(draw(st.integers(0, 10))):
        source = draw(st.sampled_from(names[:n_x]))
        to_queue = draw(st.booleans())
        destination = draw(st.sampled_from(queues if to_queue else names[:n_x]))
        key, args = draw(st.sampled_from(BIND_KEYS)), draw(st.sampled_from(GRAPH_ARGS))
        bindings.append(BindingInfo(source, destination, "queue" if to_queue else "exchange", key, args))
    messages = draw(
        st.lists(
            st.tuples(st.sampled_from(names[:n_x]), st.sampled_from(ROUTE_KEYS), st.sampled_from(GRAPH_HEADERS)),
            min_size=30,
            max_size=30,
        )
    )
    default_keys = st.sampled_from([*queues, "", "rl-test-routing-no-such-queue"])
    cc = st.lists(default_keys, max_size=3).map(lambda names: {"CC": names})
    messages += draw(st.lists(st.tuples(st.just(""), default_keys, st.one_of(st.just({}), cc)), max_size=6))
    return exchanges, queues, bindings, messages


def _cc_bcc_graph() -> tuple[list[ExchangeInfo], list[str], list[BindingInfo], list[Message]]:
    """A headers and a direct exchange, each binding on its own queue, and every CC/BCC header of GRAPH_HEADERS."""
    headers_x, direct_x = _names("x", 2)
    queues = _names("q", 6)
    bindings = [
        BindingInfo(headers_x, queues[0], "queue", "", {"x-match": "any", "BCC": ["a"]}),
        BindingInfo(headers_x, queues[1], "queue", "", {"CC": ["b"]}),
        BindingInfo(headers_x, queues[2], "queue", "", {"x-match": "any", "CC": ["a", "c"], "BCC": ["b"]}),
        BindingInfo(direct_x, queues[3], "queue", "a"),
        BindingInfo(direct_x, queues[4], "queue", "b"),
        BindingInfo(direct_x, queues[5], "queue", "c"),
    ]
    messages = [(x, key, h) for x in (headers_x, direct_x) for key in ("", "a") for h in GRAPH_HEADERS]
    return [ExchangeInfo(headers_x, "headers"), ExchangeInfo(direct_x, "direct")], queues, bindings, messages


def test_exchange_graphs_with_alternates_and_cc_agree_with_the_broker(lab: Lab) -> None:
    @settings(
        derandomize=False,
        deadline=None,
        max_examples=40,
        phases=PHASES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=graphs())
    @example(case=_cc_bcc_graph())
    def check(case: tuple[list[ExchangeInfo], list[str], list[BindingInfo], list[Message]]) -> None:
        exchanges, queues, bindings, messages = case
        lab.check(exchanges, queues, bindings, messages, counter="graph")

    check()
    assert lab.decisions["graph"] >= 1000, lab.decisions
