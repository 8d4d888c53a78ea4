"""The pure parts of rabbit/topology.py: records, the lab's registry, the management view, routing inputs."""

from rabbit.routing import BindingInfo, ExchangeInfo, route
from rabbit.topology import (
    STANDARD_EXCHANGE_NAMES,
    Registry,
    binding_key,
    binding_record,
    exchange_record,
    from_management,
    queue_record,
    routing_inputs,
    topology_version,
    with_exact_arguments,
)


def test_registry_snapshot_holds_the_default_and_standard_exchanges():
    snapshot = Registry().snapshot()
    assert snapshot["source"] == "lab"
    names = [e["name"] for e in snapshot["exchanges"]]
    assert names == sorted(STANDARD_EXCHANGE_NAMES)
    assert names[0] == ""
    assert snapshot["queues"] == [] and snapshot["bindings"] == []


def test_registry_lists_what_the_lab_declared_sorted():
    registry = Registry()
    registry.add_exchange(exchange_record("logs", "fanout"))
    registry.add_queue(queue_record("b-queue"))
    registry.add_queue(queue_record("a-queue", durable=True))
    registry.add_binding(binding_record("logs", "b-queue"))
    snapshot = registry.snapshot()
    assert [q["name"] for q in snapshot["queues"]] == ["a-queue", "b-queue"]
    assert snapshot["queues"][0]["durable"] is True
    assert "logs" in [e["name"] for e in snapshot["exchanges"]]
    assert snapshot["bindings"] == [binding_record("logs", "b-queue")]


def test_the_same_binding_twice_is_one_binding_but_other_arguments_make_another():
    registry = Registry()
    registry.add_binding(binding_record("h", "q", arguments={"x-match": "any", "a": 1}))
    registry.add_binding(binding_record("h", "q", arguments={"a": 1, "x-match": "any"}))
    assert len(registry.bindings) == 1
    registry.add_binding(binding_record("h", "q", arguments={"x-match": "all", "a": 1}))
    assert len(registry.bindings) == 2


def test_removing_a_queue_removes_its_bindings_only():
    registry = Registry()
    registry.add_queue(queue_record("q1"))
    registry.add_queue(queue_record("q2"))
    registry.add_binding(binding_record("x", "q1", routing_key="a"))
    registry.add_binding(binding_record("x", "q2", routing_key="a"))
    registry.add_binding(binding_record("x", "q1", "exchange", routing_key="a"))  # an exchange named like the queue
    registry.remove_queue("q1")
    remaining = sorted((b["destination"], b["destination_type"]) for b in registry.bindings.values())
    assert remaining == [("q1", "exchange"), ("q2", "queue")]


def test_removing_an_exchange_removes_bindings_from_and_to_it():
    registry = Registry()
    registry.add_exchange(exchange_record("x", "topic"))
    registry.add_binding(binding_record("x", "q", routing_key="#"))
    registry.add_binding(binding_record("up", "x", "exchange"))
    registry.add_binding(binding_record("up", "q"))
    registry.remove_exchange("x")
    assert [binding_key(b) for b in registry.bindings.values()] == [binding_key(binding_record("up", "q"))]


def test_removing_a_binding_that_was_never_made_is_harmless():
    registry = Registry()
    registry.remove_binding(binding_record("x", "q"))
    assert registry.bindings == {}


def test_management_view_is_normalised_and_hides_default_exchange_bindings():
    exchanges = [
        {"name": "", "type": "direct", "durable": True, "auto_delete": False, "internal": False, "arguments": {}},
        {
            "name": "ae-x",
            "type": "topic",
            "durable": False,
            "auto_delete": True,
            "internal": False,
            "arguments": {"alternate-exchange": "ae"},
            "vhost": "/",
            "user_who_performed_action": "guest",
        },
    ]
    queues = [
        {
            "name": "q2",
            "durable": True,
            "exclusive": True,
            "auto_delete": False,
            "arguments": {"x-max-length": 5},
            "messages": 7,
            "consumers": 1,
        },
        {"name": "q1", "durable": False, "exclusive": False, "auto_delete": False, "arguments": {}},  # no stats yet
    ]
    bindings = [
        {"source": "", "destination": "q1", "destination_type": "queue", "routing_key": "q1", "arguments": {}},
        {
            "source": "ae-x",
            "destination": "q2",
            "destination_type": "queue",
            "routing_key": "*.a",
            "arguments": {},
            "properties_key": "*.a",
            "vhost": "/",
        },
    ]
    snapshot = from_management(exchanges, queues, bindings)
    assert snapshot["source"] == "management"
    assert snapshot["exchanges"][1] == {
        "name": "ae-x",
        "type": "topic",
        "durable": False,
        "auto_delete": True,
        "internal": False,
        "arguments": {"alternate-exchange": "ae"},
    }
    assert [q["name"] for q in snapshot["queues"]] == ["q1", "q2"]
    assert snapshot["queues"][0]["messages"] == 0 and snapshot["queues"][0]["consumers"] == 0
    assert snapshot["queues"][1] == {
        "name": "q2",
        "durable": True,
        "exclusive": True,
        "auto_delete": False,
        "arguments": {"x-max-length": 5},
        "messages": 7,
        "consumers": 1,
    }
    assert snapshot["bindings"] == [binding_record("ae-x", "q2", "queue", "*.a")]


def test_equal_topologies_give_equal_snapshots_whatever_the_order():
    a = from_management(
        [{"name": "b", "type": "fanout"}, {"name": "a", "type": "topic"}],
        [{"name": "q2"}, {"name": "q1"}],
        [{"source": "a", "destination": "q2", "routing_key": "z"}, {"source": "a", "destination": "q1"}],
    )
    b = from_management(
        [{"name": "a", "type": "topic"}, {"name": "b", "type": "fanout"}],
        [{"name": "q1"}, {"name": "q2"}],
        [{"source": "a", "destination": "q1"}, {"source": "a", "destination": "q2", "routing_key": "z"}],
    )
    assert a == b


def test_routing_inputs_convert_a_snapshot_for_the_engine():
    registry = Registry()
    registry.add_exchange(exchange_record("main", "direct", arguments={"alternate-exchange": "ae"}))
    registry.add_exchange(exchange_record("hidden", "fanout", internal=True))
    registry.add_queue(queue_record("q"))
    registry.add_binding(binding_record("main", "hidden", "exchange", "k"))
    exchanges, bindings, queues = routing_inputs(registry.snapshot())
    by_name = {e.name: e for e in exchanges}
    assert by_name["main"] == ExchangeInfo("main", "direct", arguments={"alternate-exchange": "ae"})
    assert by_name["hidden"].internal is True
    assert by_name["amq.topic"].type == "topic"
    assert bindings == [BindingInfo("main", "hidden", "exchange", routing_key="k", arguments={})]
    assert queues == ["q"]


def test_routing_inputs_feed_the_engine_end_to_end():
    registry = Registry()
    registry.add_exchange(exchange_record("animals", "topic"))
    for queue, key in (("q-orange", "*.orange.*"), ("q-lazy", "lazy.#")):
        registry.add_queue(queue_record(queue))
        registry.add_binding(binding_record("animals", queue, routing_key=key))
    exchanges, bindings, queues = routing_inputs(registry.snapshot())
    assert route(exchanges, bindings, "animals", "quick.orange.rabbit", queues=queues).queues == ["q-orange"]
    assert route(exchanges, bindings, "animals", "lazy.pink", queues=queues).queues == ["q-lazy"]
    assert route(exchanges, bindings, "", "q-lazy", queues=queues).queues == ["q-lazy"]


def _shown(arguments: dict) -> dict:
    """A management API listing with one binding on the headers exchange h."""
    return from_management(
        [{"name": "h", "type": "headers"}],
        [{"name": "q"}],
        [{"source": "h", "destination": "q", "destination_type": "queue", "routing_key": "", "arguments": arguments}],
    )


def test_management_arguments_it_may_have_changed_are_marked_unclear():
    # What the management API shows for {"flag": void, "t": {"k": 1, "j": "a"}, "n": 1}.
    snapshot = _shown({"flag": "undefined", "t": {"j": "a", "k": 1}, "n": 1, "x-match": "all"})
    assert snapshot["bindings"][0]["arguments_unclear"] == ["flag", "t"]
    assert "arguments_unclear" not in _shown({"x-match": "any", "n": 1, "one": {"k": 1}})["bindings"][0]
    _, bindings, _ = routing_inputs(snapshot)
    assert bindings[0].unclear == ("flag", "t")


def test_the_labs_own_bindings_get_back_the_arguments_it_declared():
    declared = {"x-match": "all", "flag": None, "t": {"k": 1, "j": "a"}}
    shown = _shown({"flag": "undefined", "t": {"j": "a", "k": 1}, "x-match": "all"})
    exact = with_exact_arguments(shown, [binding_record("h", "q", arguments=declared)])
    assert exact["bindings"] == [binding_record("h", "q", arguments=declared)]
    assert list(exact["bindings"][0]["arguments"]["t"]) == ["k", "j"]
    exchanges, bindings, _queues = routing_inputs(exact)
    assert route(exchanges, bindings, "h", "", {"flag": 7, "t": {"k": 1, "j": "a"}}).queues == ["q"]
    assert route(exchanges, bindings, "h", "", {"flag": 7, "t": {"j": "a", "k": 1}}).queues == []
    # Another application's binding (not in the lab's list) keeps the listing's view, marked unclear.
    other = with_exact_arguments(shown, [binding_record("h", "q", arguments={"x-match": "all", "flag": 1})])
    assert other["bindings"][0]["arguments_unclear"] == ["flag", "t"]


def test_two_bindings_that_differ_only_in_a_nested_tables_order_are_two_bindings():
    registry = Registry()
    registry.add_binding(binding_record("h", "q", arguments={"t": {"k": 1, "j": "a"}}))
    registry.add_binding(binding_record("h", "q", arguments={"t": {"j": "a", "k": 1}}))
    registry.add_binding(binding_record("h", "q", arguments={"u": 1, "t": {"j": "a", "k": 1}}))
    registry.add_binding(binding_record("h", "q", arguments={"t": {"j": "a", "k": 1}, "u": 1}))
    assert len(registry.snapshot()["bindings"]) == 3  # top-level order is no difference, nested order is


def test_the_topology_version_follows_routing_not_counts():
    base = _shown({"x-match": "all", "n": 1})
    counted = {**base, "queues": [{**base["queues"][0], "messages": 5}]}
    rebound = _shown({"x-match": "all", "n": 2})
    assert topology_version(base) == topology_version(counted)
    assert topology_version(base) != topology_version(rebound)
