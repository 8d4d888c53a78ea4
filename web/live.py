"""The bridge from ``rabbit/`` events to Socket.IO clients.

Low-rate events (status, topology) go out at once with :meth:`LiveHub.broadcast`. High-rate ones (deliveries,
taps, trace, RPC) go through :meth:`LiveHub.publish`: an :class:`~rabbit.events.AdaptiveBatcher` and ONE flusher
greenlet (``socketio.start_background_task``) that emits each event at once while traffic is light and lists of
events (``batch``) under load. Before each emit the flusher looks at every client's Engine.IO send queue: a client
whose queue is backed up (a slow browser, a stalled tab) is skipped for that flush and told later how many events
it missed, so the server never buffers without bound for it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
import socketio
from flask_socketio import SocketIO

from rabbit.events import AdaptiveBatcher, Flush, ViewLedger

log = logging.getLogger(__name__)


class FastJSON:
    """The ``json`` module Socket.IO packets use, on orjson.

    Encoding the events was an eighth of the server's time in a 300k-message drain (py-spy) with the standard
    library; orjson does it several times faster. Anything orjson refuses (an integer beyond 64 bits, say) falls
    back to the standard library, so the output never depends on which encoder ran.
    """

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
        except (orjson.JSONEncodeError, TypeError):
            return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(data: str | bytes, **kwargs: Any) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # orjson refuses lone surrogates ("\ud800") that JSON allows
            return json.loads(data, **kwargs)


class TextOnlyPacket(socketio.packet.Packet):
    """Socket.IO packets for a server that never sends binary attachments.

    python-socketio walks every emitted payload, item by item, looking for ``bytes`` to send as attachments;
    under a flood that walk cost a fifth of the server's time (cProfile of a 100k-message tap drain). Everything
    the lab emits is JSON text (bodies go out as text or hex previews), so the walk is skipped; a stray ``bytes``
    then fails loudly in the JSON encoder instead of travelling as an attachment.
    """

    json = FastJSON

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        return False


def allocate_os_lock() -> Any:
    """A lock of the operating system, even when gevent has patched ``threading`` (see :class:`LiveHub`)."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # no gevent: the threading module's lock is the OS one
        return threading.Lock()
    return get_original("_thread", "allocate_lock")()


# How many of the newest high-rate events a (re)connecting browser is sent in `recent`, to re-sync its feeds.
RECENT_EVENTS = 200
# A client with more packets than this waiting in its send queue is skipped (its events count as dropped).
CLIENT_BACKLOG_LIMIT = 8
# While idle, how often clients that were skipped are told their drop counts once they catch up.
NOTICE_INTERVAL = 0.2
NAMESPACE = "/"


class LiveHub:
    """Sends events to the browsers. ``rabbit/`` code gets :meth:`sink` as its ``on_event`` callback."""

    def __init__(
        self,
        socketio: SocketIO,
        *,
        batcher: AdaptiveBatcher | None = None,
        client_backlog_limit: int = CLIENT_BACKLOG_LIMIT,
    ) -> None:
        self.socketio = socketio
        # Called with a new client's sid: each area sends that client its current state (re-sync on reconnect).
        self.connect_hooks: list[Callable[[str], None]] = []
        self.batcher = batcher or AdaptiveBatcher()
        self.ledger = ViewLedger()
        self.client_backlog_limit = client_backlog_limit
        self.skipped_flushes = 0
        # Guards the batcher, the ledger and the recent ring. Every section it guards is pure bookkeeping that
        # never yields, so under gevent a plain OS lock is safe (no greenlet can switch while it is held) and it
        # costs a tenth of gevent's cooperative lock, which was 5% of the server's time in a flood (py-spy).
        self._lock = allocate_os_lock()
        self._wake = threading.Event()
        self._flusher: Any = None
        self._stopping = False
        self._recent: deque[tuple[float, str, Any]] = deque(maxlen=RECENT_EVENTS)

    # ----------------------------------------------------------------- low-rate
    def broadcast(self, event: str, payload: Any) -> None:
        """Send one event to every connected client now (for low-rate events: status, topology)."""
        try:
            self.socketio.emit(event, payload)
        except Exception:
            log.exception("emit of %s failed", event)

    def send_to(self, sid: str, event: str, payload: Any) -> None:
        self.socketio.emit(event, payload, to=sid)

    # ----------------------------------------------------------------- high-rate
    def publish(self, event: str, payload: Any) -> None:
        """Queue a high-rate event (delivery, tap, trace, rpc_*...) for every client.

        The contract: a client receives it either as its own Socket.IO event ``event`` with ``payload``, or,
        under load, inside a ``batch`` event ``{"events": [{"event": name, "data": payload}, ...],
        "dropped": {name: n}, "totals": {name: n}}`` (``dropped``: events this client missed since it
        connected; ``totals``: events published since the server started). The page's socket module unpacks
        batches, so panels just subscribe to ``event``.
        """
        with self._lock:
            self.batcher.add(event, payload)
            self._recent.append((time.time(), event, payload))
        if self._flusher is None:
            self._start_flusher()
        self._wake.set()

    def sink(self, event: str, payload: Any) -> None:
        """The ``on_event(name, payload)`` callback handed to ``rabbit/`` code."""
        self.publish(event, payload)

    def client_connected(self, sid: str) -> None:
        with self._lock:
            self.ledger.connect(sid)
        for hook in self.connect_hooks:
            try:
                hook(sid)
            except Exception:
                log.exception("connect hook failed")
        self.send_recent(sid)

    def send_recent(self, sid: str) -> None:
        """Send a (re)connecting browser the newest high-rate events: ``recent`` ``{"events": [{"event", "data",
        "age_s"}...]}``, oldest first. A page that lost its link replays those younger than its gap (ages, not
        clocks, decide, so the two machines' clocks need not agree); a fresh page ignores them."""
        now = time.time()
        with self._lock:
            items = [{"event": name, "data": data, "age_s": round(now - at, 3)} for at, name, data in self._recent]
        self.send_to(sid, "recent", {"events": items})

    def stats(self) -> dict[str, Any]:
        """Totals and drops of the live path (for health pages and the benchmark)."""
        with self._lock:
            stats = self.batcher.stats()
        stats["skipped_flushes"] = self.skipped_flushes
        return stats

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # ----------------------------------------------------------------- the flusher
    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None:
                return
            self._flusher = True  # claimed; the task handle replaces it
        self._flusher = self.socketio.start_background_task(self._flush_loop)

    def _flush_loop(self) -> None:
        while not self._stopping:
            try:
                self._wake.clear()
                with self._lock:
                    delay = self.batcher.delay()
                if delay is None:
                    if self._tell_drops():
                        self._wake.wait(NOTICE_INTERVAL)  # a lagging client may catch up: try again soon
                    else:
                        self._wake.wait(1.0)
                    continue
                if delay > 0:
                    self.socketio.sleep(delay)
                    continue
                with self._lock:
                    flush = self.batcher.take()
                if flush is not None:
                    self._deliver(flush)
                    # Let the consumers and the websocket writers run between two flushes.
                    self.socketio.sleep(0)
            except Exception:
                log.exception("live flusher failed; it goes on")
                self.socketio.sleep(0.1)

    def _clients(self) -> tuple[list[str], list[str]] | None:
        """(ready, lagging) client sids, or None when the server cannot be inspected (then: broadcast)."""
        try:
            server = self.socketio.server
            participants = server.manager.rooms.get(NAMESPACE, {}).get(None)
            if participants is None:
                return [], []
            sockets = server.eio.sockets
            ready: list[str] = []
            lagging: list[str] = []
            for sid, eio_sid in list(participants.items()):
                socket = sockets.get(eio_sid)
                backlog = socket.queue.qsize() if socket is not None else 0
                (lagging if backlog > self.client_backlog_limit else ready).append(sid)
            return ready, lagging
        except AttributeError:
            return None

    def _tell_drops(self) -> bool:
        """Send pending drop counts to clients that caught up; True while some client still lags behind."""
        clients = self._clients()
        if clients is None:
            return False
        ready, lagging = clients
        with self._lock:
            emits = self.ledger.notices(ready, dict(self.batcher.totals))
            waiting = bool(self.ledger.untold(lagging))
        for emit in emits:
            try:
                self.socketio.emit(emit.event, emit.data, to=emit.sids)
            except Exception:
                log.exception("emit of %s failed", emit.event)
        return waiting

    def _deliver(self, flush: Flush) -> None:
        clients = self._clients()
        if clients is None:  # the server cannot be inspected: plain broadcasts, no per-client accounting
            if len(flush.events) == 1 and not flush.dropped:
                self.broadcast(*flush.events[0])
            else:
                events = [{"event": name, "data": data} for name, data in flush.events]
                dropped = dict(self.batcher.dropped)
                self.broadcast("batch", {"events": events, "dropped": dropped, "totals": flush.totals})
            return
        ready, lagging = clients
        if lagging:
            self.skipped_flushes += 1
        with self._lock:
            emits = self.ledger.plan(flush, ready, lagging)
        for emit in emits:
            try:
                self.socketio.emit(emit.event, emit.data, to=emit.sids)
            except Exception:
                log.exception("emit of %s failed", emit.event)
