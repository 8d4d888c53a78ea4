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

The package, one module per role: ``model`` (the records), ``topic``, ``headers``, ``explain``, ``walk`` (the graph
walk), ``trie`` and ``index`` (a topology indexed once, routed many times) and ``near`` / ``near_words``
(near misses).
"""

from rabbit.routing.headers import (
    MANAGEMENT_VOID,
    blurred_by_management,
    explain_headers,
    headers_match,
    same_in_management_view,
    x_match_mode,
)
from rabbit.routing.index import RoutingIndex
from rabbit.routing.model import (
    DEFAULT_EXCHANGE,
    DIRECT_REPLY_TO_PREFIX,
    EXCHANGE_TYPES,
    HASH,
    STAR,
    X_MATCH_MODES,
    BindingInfo,
    ExchangeInfo,
    Match,
    Miss,
    RouteResult,
    UnknownExchange,
    jsonable,
)
from rabbit.routing.topic import explain_topic, split_words, topic_matches
from rabbit.routing.trie import TopicTrie
from rabbit.routing.walk import route, route_indexed

__all__ = [
    "DEFAULT_EXCHANGE",
    "DIRECT_REPLY_TO_PREFIX",
    "EXCHANGE_TYPES",
    "HASH",
    "MANAGEMENT_VOID",
    "STAR",
    "X_MATCH_MODES",
    "BindingInfo",
    "ExchangeInfo",
    "Match",
    "Miss",
    "RouteResult",
    "RoutingIndex",
    "TopicTrie",
    "UnknownExchange",
    "blurred_by_management",
    "explain_headers",
    "explain_topic",
    "headers_match",
    "jsonable",
    "route",
    "route_indexed",
    "same_in_management_view",
    "split_words",
    "topic_matches",
    "x_match_mode",
]
