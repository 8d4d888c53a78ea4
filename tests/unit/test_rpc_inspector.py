"""Pairing RPC requests and replies from trace events, for applications that know nothing of the lab."""

import pytest

from rabbit.rpc_inspector import ANSWERED, DUPLICATE, ERROR, UNANSWERED, RpcInspector


def publish(t, *, routing_key, cid=None, reply_to=None, body="", exchange="", headers=None, conn="client-conn"):
    return {
        "kind": "publish",
        "exchange": exchange,
        "routing_key": routing_key,
        "routed_queues": [routing_key],
        "queue": None,
        "properties": {"headers": headers or {}},
        "correlation_id": cid,
        "reply_to": reply_to,
        "body": {"kind": "text", "text": body, "json": None, "hex": None, "size": len(body), "truncated": False},
        "id": None,
        "connection": conn,
        "channel": 1,
        "user": "guest",
        "node": "rabbit@x",
        "time": t,
    }


def deliver(t, *, queue, cid, reply_to, conn="server-conn", redelivered=False):
    event = publish(t, routing_key=queue, cid=cid, reply_to=reply_to, conn=conn)
    return {**event, "kind": "deliver", "queue": queue, "redelivered": redelivered}


def test_a_request_and_its_reply_make_one_round_trip():
    inspector = RpcInspector()
    assert inspector.feed(publish(1.0, routing_key="rpc_queue", cid="a", reply_to="amq.gen-1", body="30")) == []
    assert inspector.feed(deliver(1.001, queue="rpc_queue", cid="a", reply_to="amq.gen-1")) == []
    [trip] = inspector.feed(
        publish(
            1.004, routing_key="amq.gen-1", cid="a", body="832040", conn="server-conn", headers={"x-rpc-server": "s1"}
        )
    )
    assert trip["status"] == ANSWERED
    assert trip["client"] == "client-conn" and trip["client_queue"] == "amq.gen-1"
    assert trip["request_queue"] == "rpc_queue" and trip["server"] == "s1"
    assert trip["request_body"] == "30" and trip["reply_body"] == "832040"
    assert trip["latency_ms"] == pytest.approx(4.0)
    assert trip["deliveries"] == 1 and trip["redelivered"] is False
    snap = inspector.snapshot(2.0)
    assert snap["waiting"] == [] and snap["roundtrips"] == [trip]
    assert snap["counts"]["requests"] == 1 and snap["counts"][ANSWERED] == 1


def test_a_server_without_the_lab_header_is_named_by_its_connection():
    inspector = RpcInspector()
    inspector.feed(publish(0, routing_key="q", cid="a", reply_to="cb"))
    [trip] = inspector.feed(publish(0.1, routing_key="cb", cid="a", body="1", conn="127.0.0.1:5555 -> 127.0.0.1:5672"))
    assert trip["server"] == "127.0.0.1:5555 -> 127.0.0.1:5672"


def test_error_replies_are_marked_errors():
    inspector = RpcInspector()
    inspector.feed(publish(0, routing_key="rpc_queue", cid="a", reply_to="cb", body="abc"))
    [trip] = inspector.feed(publish(0.1, routing_key="cb", cid="a", body="error", headers={"error": "not an integer"}))
    assert trip["status"] == ERROR and trip["error"] == "not an integer"


def test_same_correlation_id_on_another_reply_queue_is_not_a_reply():
    inspector = RpcInspector()
    inspector.feed(publish(0, routing_key="rpc_queue", cid="a", reply_to="cb-1"))
    assert inspector.feed(publish(0.1, routing_key="cb-2", cid="a", body="x")) == []
    assert inspector.feed(publish(0.2, routing_key="cb-1", cid="a", exchange="amq.direct", body="x")) == []
    assert len(inspector.snapshot(1)["waiting"]) == 1


def test_messages_without_correlation_id_are_ignored():
    inspector = RpcInspector()
    assert inspector.feed(publish(0, routing_key="rpc_queue", reply_to="cb")) == []
    assert inspector.snapshot(0)["counts"]["requests"] == 0


def test_a_second_reply_after_redelivery_is_a_duplicate():
    inspector = RpcInspector()
    inspector.feed(publish(0, routing_key="rpc_queue", cid="a", reply_to="cb", body="5"))
    inspector.feed(deliver(0.01, queue="rpc_queue", cid="a", reply_to="cb", conn="server-1"))
    [first] = inspector.feed(publish(0.02, routing_key="cb", cid="a", body="5", headers={"x-rpc-server": "s1"}))
    inspector.feed(deliver(0.5, queue="rpc_queue", cid="a", reply_to="cb", conn="server-2", redelivered=True))
    [again] = inspector.feed(publish(0.6, routing_key="cb", cid="a", body="5", headers={"x-rpc-server": "s2"}))
    assert first["status"] == ANSWERED and first["server"] == "s1"
    assert again["status"] == DUPLICATE and again["server"] == "s2" and again["latency_ms"] == pytest.approx(600)
    assert inspector.snapshot(1)["counts"][DUPLICATE] == 1


def test_redelivery_before_the_only_reply_is_counted():
    inspector = RpcInspector()
    inspector.feed(publish(0, routing_key="rpc_queue", cid="a", reply_to="cb"))
    inspector.feed(deliver(0.01, queue="rpc_queue", cid="a", reply_to="cb", conn="dead-server"))
    inspector.feed(deliver(0.5, queue="rpc_queue", cid="a", reply_to="cb", conn="live-server", redelivered=True))
    [trip] = inspector.feed(publish(0.6, routing_key="cb", cid="a", body="5", conn="live-server"))
    assert trip["deliveries"] == 2 and trip["redelivered"] is True and trip["server"] == "live-server"


def test_direct_reply_to_pairs_the_broker_made_name_by_correlation_id():
    inspector = RpcInspector()
    inspector.feed(publish(0, routing_key="rpc_queue", cid="d", reply_to="amq.rabbitmq.reply-to"))
    [trip] = inspector.feed(publish(0.003, routing_key="amq.rabbitmq.reply-to.g1h2AA5yZXBseUAx", cid="d", body="1"))
    assert trip["status"] == ANSWERED and trip["client_queue"] == "amq.rabbitmq.reply-to"
    again = inspector.feed(publish(0.01, routing_key="amq.rabbitmq.reply-to.g1h2AA5yZXBseUAx", cid="d", body="1"))
    assert [t["status"] for t in again] == [DUPLICATE]


def test_direct_reply_to_with_the_long_name_in_the_request_also_pairs():
    inspector = RpcInspector()
    long_name = "amq.rabbitmq.reply-to.g1h2AA5yZXBseUAx.abc=="
    inspector.feed(publish(0, routing_key="rpc_queue", cid="d", reply_to=long_name))
    [trip] = inspector.feed(publish(0.001, routing_key=long_name, cid="d", body="1"))
    assert trip["status"] == ANSWERED


def test_a_reply_seen_just_before_its_request_still_pairs():
    inspector = RpcInspector()
    assert inspector.feed(publish(0.0, routing_key="cb", cid="e", body="8")) == []
    [trip] = inspector.feed(publish(0.001, routing_key="rpc_queue", cid="e", reply_to="cb", body="6"))
    assert trip["status"] == ANSWERED and trip["reply_body"] == "8"


def test_replies_with_no_request_are_dropped_after_a_while():
    inspector = RpcInspector(early_reply_s=2)
    inspector.feed(publish(0.0, routing_key="cb", cid="zzz", body="8"))
    assert inspector.expire(1.0) == []
    assert inspector.expire(5.0) == []
    assert inspector.snapshot(5)["counts"]["unmatched_replies"] == 1
    assert inspector.feed(publish(6.0, routing_key="rpc_queue", cid="zzz", reply_to="cb")) == []


def test_unanswered_requests_are_reported_once_then_forgotten():
    inspector = RpcInspector(unanswered_after_s=5)
    inspector.feed(publish(0, routing_key="nobody_home", cid="a", reply_to="cb", body="7"))
    inspector.feed(publish(3, routing_key="nobody_home", cid="b", reply_to="cb", body="8"))
    waiting = inspector.snapshot(4)["waiting"]
    assert [w["correlation_id"] for w in waiting] == ["a", "b"] and waiting[0]["age_ms"] == pytest.approx(4000)
    assert inspector.expire(4.9) == []
    [late] = inspector.expire(5.5)
    assert late["status"] == UNANSWERED and late["correlation_id"] == "a" and late["latency_ms"] is None
    assert inspector.expire(6) == []
    assert [r["status"] for r in inspector.expire(9)] == [UNANSWERED]
    assert inspector.snapshot(10)["waiting"] == []


def test_memory_is_bounded():
    inspector = RpcInspector(max_pending=10, keep=5)
    for i in range(50):
        inspector.feed(publish(i, routing_key="q", cid=f"c{i}", reply_to="cb"))
    snap = inspector.snapshot(50)
    assert len(snap["waiting"]) == 10 and snap["counts"]["dropped"] == 40
    for i in range(40, 50):
        inspector.feed(publish(60, routing_key="cb", cid=f"c{i}"))
    assert len(inspector.snapshot(60)["roundtrips"]) == 5


def test_interleaved_clients_each_get_their_own_replies():
    inspector = RpcInspector()
    for client in range(3):
        for call in range(4):
            inspector.feed(publish(0, routing_key="rpc_queue", cid=f"{call}", reply_to=f"cb{client}", body=f"{client}"))
    trips = []
    for call in reversed(range(4)):
        for client in range(3):
            trips += inspector.feed(publish(1, routing_key=f"cb{client}", cid=f"{call}", body=f"r{client}"))
    assert len(trips) == 12
    assert all(t["request_body"] == t["client_queue"][2:] == t["reply_body"][1:] for t in trips)
    assert inspector.snapshot(2)["waiting"] == []
