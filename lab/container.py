"""The services of one lab, built together (see ``app.build_lab``) and stopped together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lab.broker import BrokerService
from lab.message_service import MessageService
from lab.rpc import RpcService
from lab.settings import Settings
from lab.spies import SpyService
from lab.topology import TopologyService
from lab.traffic import TrafficService
from lab.watch import WatchService
from rabbit.urls import url_password

log = logging.getLogger(__name__)


@dataclass
class Lab:
    settings: Settings
    broker: BrokerService
    watch: WatchService
    topology: TopologyService
    traffic: TrafficService
    rpc: RpcService
    spies: SpyService
    messages: MessageService
    _stopped: bool = False

    def start(self) -> None:
        """Start the areas' connections and loops, then the main link (in the order the lab always used)."""
        self.topology.start()
        self.traffic.start()
        self.rpc.start()
        self.broker.start()

    def secrets(self) -> list[str]:
        """The passwords of the broker URLs: scrubbed from every log line."""
        return [s for s in (url_password(self.settings.amqp_url), url_password(self.settings.management_url)) if s]

    def shutdown(self) -> None:
        """Stop the areas (messages, spies, rpc, watch, traffic, topology: newest first) and close the main link; a
        second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        stops = (self.messages.stop, self.spies.stop, self.rpc.stop, self.watch.stop, self.traffic.stop)
        for stop in (*stops, self.topology.stop):
            try:
                stop()
            except Exception:
                log.exception("stopping an area failed")
        self.broker.stop()
