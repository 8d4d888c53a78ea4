"""Each area's service built alone, without Flask or Socket.IO: the sink it is handed hears what it does."""

from __future__ import annotations

import pytest

from lab.broker import BrokerService
from lab.events import RecordingSink
from lab.rpc import RpcService
from lab.settings import Settings
from lab.topology import TopologyService
from lab.traffic import TrafficService
from rabbit.errors import InvalidInput
from tests.conftest import wait_until
from tests.integration.helpers import declare_queue

pytestmark = pytest.mark.broker


def test_a_traffic_service_alone_publishes_and_streams_to_its_sink(broker_url, amqp, unique):
    settings = Settings.from_env({}, amqp_url=broker_url, publish_max_count=3)
    sink = RecordingSink()
    traffic = TrafficService(settings, sink, broker=BrokerService(settings, sink))
    traffic.start()
    try:
        queue = declare_queue(amqp, unique("alone"))
        answer = traffic.publish("", queue, "hello")
        assert answer["confirmed"] is True and answer["routed"] is True
        assert answer["predicted"] is None, "no topology service was handed in: no prediction"
        wait_until(lambda: [e for e in sink.named("published") if e["id"] == answer["id"]], message="published")
        assert ("stream", "published") in {(rate, name) for rate, name, _ in sink.events}
        with pytest.raises(InvalidInput, match="at most 3 messages"):
            traffic.publish("", queue, "x", count=4)
    finally:
        traffic.stop()


def test_traffic_predicts_with_the_topology_service_it_is_handed(broker_url, amqp, unique):
    settings = Settings.from_env({}, amqp_url=broker_url)
    sink = RecordingSink()
    broker = BrokerService(settings, sink)
    topology = TopologyService(settings, sink, link=broker.link, management=None)
    traffic = TrafficService(settings, sink, broker=broker, topology=topology)
    broker.start()
    traffic.start()
    try:
        assert broker.link.wait_connected(10)
        queue = declare_queue(amqp, unique("predicted"))
        answer = traffic.publish("", queue, "where?")
        assert answer["predicted"] == [queue]
    finally:
        traffic.stop()
        broker.stop()


def test_an_rpc_service_alone_says_it_cannot_inspect_without_a_watch_service(broker_url):
    settings = Settings.from_env({}, amqp_url=broker_url)
    rpc = RpcService(settings, RecordingSink())
    rpc.start()
    try:
        answer = rpc.inspect()
        assert answer["inspecting"] is False
        assert "watch service" in answer["reason"]
        assert rpc.state_events()[0][0] == "rpc_state"
    finally:
        rpc.stop()
