"""Pure parts of spies (which bindings a shadow queue mirrors) and of refused RPC calls (which answers count)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lab.spies import bindings_of
from web.rpc_refused import refusal


def binding(source: str, destination: str, key: str = "", arguments: dict | None = None, kind: str = "queue") -> dict:
    return {
        "source": source,
        "destination": destination,
        "destination_type": kind,
        "routing_key": key,
        "arguments": arguments or {},
    }


def test_a_spy_mirrors_the_queues_bindings_only_and_never_the_default_exchange():
    snapshot = {
        "bindings": [
            binding("", "q", "q"),  # the default exchange's implicit binding: cannot be mirrored
            binding("x", "q", "a.*"),
            binding("x", "other", "a.*"),
            binding("x", "q", "b", kind="exchange"),  # an exchange named q, not the queue
            binding("amq.headers", "q", "", {"x-match": "all", "f": "pdf"}),
            binding("x", "q", "a.*"),  # listed twice: bound once
        ]
    }
    assert bindings_of(snapshot, "q") == [("x", "a.*", None), ("amq.headers", "", {"x-match": "all", "f": "pdf"})]
    assert bindings_of(snapshot, "nobody") == []
    assert bindings_of({}, "q") == []


@given(st.lists(st.tuples(st.sampled_from(["", "x", "y"]), st.sampled_from(["q", "r"]), st.text(max_size=5))))
def test_every_mirrored_binding_is_one_of_the_queues(rows):
    snapshot = {"bindings": [binding(s, d, k) for s, d, k in rows]}
    mirrored = bindings_of(snapshot, "q")
    assert len(mirrored) == len(set(mirrored))
    assert set(mirrored) == {(s, k, None) for s, d, k in rows if d == "q" and s}


def test_refused_calls_are_the_ones_never_sent():
    no_server = {
        "error": {"code": "timeout", "message": "no server is consuming from 'q' (0 consumers)", "waited_ms": 0}
    }
    refused = refusal(504, no_server, {"n": 5, "queue": "q"})
    assert refused is not None
    assert refused["n"] == "5" and refused["queue"] == "q" and refused["correlation_id"] is None
    assert refused["reason"].startswith("no server") and refused["status"] == 504
    # A real timeout waited for a reply: its request is in the round-trip list already.
    assert refusal(504, {"error": {"code": "timeout", "message": "no reply"}}, {"n": 5}) is None
    assert refusal(200, {"result": "5"}, {"n": 5}) is None
    assert refusal(502, {"error": {"code": "server_error", "message": "x"}}, {"n": 5}) is None
    bad = refusal(400, {"error": {"code": "invalid", "message": "n: must be >= 0"}}, {"n": "x" * 500})
    assert bad is not None and len(bad["n"]) == 64 and bad["queue"] == "rpc_queue"
    assert refusal(400, {"error": {"code": "invalid", "message": "not JSON"}}, None)["n"] is None
    assert refusal(400, "not a dict", {}) is None
