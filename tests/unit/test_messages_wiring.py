"""The message service (lab/message_service.py) and the observed sink that feeds it, with fakes."""

from __future__ import annotations

import types
from typing import Any

import pytest

from lab import message_service as messages
from lab.events import ObservedSink
from lab.message_service import MessageService
from rabbit.errors import LabError


class Hub:
    """The event sink: ``stream`` (high rate) and ``emit`` (low rate); ``tasks`` records what was spawned."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.tasks: list[Any] = []

    def stream(self, event: str, payload: Any) -> None:
        self.sent.append(("stream", event, payload))

    def emit(self, event: str, payload: Any) -> None:
        self.sent.append(("emit", event, payload))


class Topology:
    def __init__(self) -> None:
        self.calls = 0

    def route(self, exchange: str, routing_key: str, headers: Any, **_: Any) -> Any:
        self.calls += 1
        if exchange == "missing":
            raise LabError("no exchange", code="NOT_FOUND")
        match = types.SimpleNamespace(to_dict=lambda: {"binding": {"routing_key": "#"}, "destination": "q"})
        return types.SimpleNamespace(matches=[match], queues=["q"], lab_queues=[], routed=True, topology_version="v1")


def build(hub: Hub, topology: Any, kept: int = 100) -> MessageService:
    watch = types.SimpleNamespace(firehose=types.SimpleNamespace(enabled=False))
    settings = types.SimpleNamespace(messages_kept=kept)
    return MessageService(settings, hub, topology=topology, watch=watch, spawn=hub.tasks.append)


def service() -> tuple[MessageService, Hub, Topology]:
    hub, topology = Hub(), Topology()
    return build(hub, topology), hub, topology


def published(n: int, exchange: str = "x") -> dict[str, Any]:
    return {"id": f"b-1-{n}", "exchange": exchange, "routing_key": "k", "properties": {}, "confirmed": True,
            "routed": True, "time": 1.0}  # fmt: skip


def test_the_observed_sink_shows_every_streamed_and_emitted_event_after_the_hub():
    seen: list[str] = []
    hub = Hub()
    sink = ObservedSink(hub)
    sink.observers.append(lambda name, _payload: seen.append(name))
    sink.stream("delivery", {})
    sink.emit("taps", [])
    assert [e for _, e, _ in hub.sent] == ["delivery", "taps"]
    assert seen == ["delivery", "taps"]


def test_a_burst_is_routed_once_and_each_copy_gets_its_routed_stage():
    svc, _hub, topology = service()
    for n in range(50):
        svc.observe("published", published(n))
    assert topology.calls == 1
    stages = [s["stage"] for s in svc.timeline.get("b-1-49")["stages"]]
    assert stages == ["published", "routed", "confirmed"]


def test_an_exchange_the_engine_cannot_route_gives_no_routed_stage():
    svc, _hub, _topology = service()
    svc.observe("published", published(1, exchange="missing"))
    assert [s["stage"] for s in svc.timeline.get("b-1-1")["stages"]] == ["published", "confirmed"]


def test_traced_publishes_wait_for_the_worker_without_their_bodies_and_the_overflow_is_counted(monkeypatch):
    monkeypatch.setattr(messages, "VERIFY_QUEUE", 3)
    svc, hub, _topology = service()
    for _ in range(5):
        svc.observe("trace", {"kind": "publish", "exchange": "x", "routing_key": "k", "routed_queues": ["q"],
                              "body": "x" * 4096})  # fmt: skip
    assert len(hub.tasks) == 1  # one worker
    assert svc.skipped == 2 and len(svc._pending) == 3
    assert all("body" not in event for event in svc._pending)
    svc.stop()


def test_the_worker_verifies_and_publishes_a_disagreement(monkeypatch):
    svc, hub, _topology = service()
    svc.observe("trace", {"kind": "publish", "exchange": "x", "routing_key": "k", "routed_queues": ["q"]})
    svc.observe("trace", {"kind": "publish", "exchange": "x", "routing_key": "k", "routed_queues": ["other"]})
    real_wait = svc._wake.wait

    def wait_once(timeout: float) -> bool:
        if svc._pending:
            return real_wait(0)
        svc.stop()
        return True

    monkeypatch.setattr(svc._wake, "wait", wait_once)
    svc._verify_loop()
    summary = svc.verification()
    assert summary["checked"] == 2 and summary["agreed"] == 1
    assert [e for _, e, _ in hub.sent] == ["route_disagreement"]
    assert summary["disagreed"][0]["broker"] == ["other"] and summary["disagreed"][0]["predicted"] == ["q"]


@pytest.mark.parametrize("payload", [None, "text", 5, []])
def test_odd_payloads_never_raise(payload):
    svc, _hub, _topology = service()
    for name in ("published", "trace", "delivery", "taps", "ack"):
        svc.observe(name, payload)


def test_a_kept_count_below_one_is_refused_by_its_setting_name():
    with pytest.raises(ValueError, match="RABBITLENS_MESSAGES_KEPT"):
        build(Hub(), Topology(), kept=0)
