"""The live hub: the lab's events (the :class:`lab.events.EventSink` of every service) to Socket.IO clients.

Low-rate events (status, topology) go out at once with :meth:`LiveHub.emit`. High-rate ones (deliveries,
taps, trace, RPC) go through :meth:`LiveHub.stream`: an :class:`~web.batching.AdaptiveBatcher` and ONE flusher
greenlet (``socketio.start_background_task``) that emits each event at once while traffic is light and lists of
events (``batch``) under load. Before each emit the flusher looks at every client's Engine.IO send queue: a client
whose queue is backed up (a slow browser, a stalled tab) is skipped for that flush and told later how many events
it missed. Every emit, low-rate ones included, first looks at the same queues: a client past the hard bound
(``client_max_backlog`` packets or ``client_max_backlog_bytes``) is disconnected and its queue freed, so the server
never buffers without bound for a tab that stopped reading; when that page comes back (its ``auth`` carries
``previous_sid``), it gets ``client_dropped`` with the reason.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import orjson
import socketio
from flask_socketio import SocketIO

from web.batching import AdaptiveBatcher, Flush, Triage, ViewLedger, triage

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
# Past this many packets (or bytes) waiting, a client is disconnected (Settings.client_max_backlog[_bytes]).
CLIENT_MAX_BACKLOG = 256
CLIENT_MAX_BACKLOG_BYTES = 16 * 1024 * 1024
# Dropped clients remembered (by sid) to tell them why when they come back.
REMEMBER_DROPPED = 1000
# While idle, how often clients that were skipped are told their drop counts once they catch up.
NOTICE_INTERVAL = 0.2
NAMESPACE = "/"


class LiveHub:
    """Sends events to the browsers: the :class:`lab.events.EventSink` every service of the lab is handed
    (:meth:`emit` for low-rate events, :meth:`stream` for high-rate ones)."""

    def __init__(
        self,
        socketio: SocketIO,
        *,
        batcher: AdaptiveBatcher | None = None,
        client_backlog_limit: int = CLIENT_BACKLOG_LIMIT,
        client_max_backlog: int = CLIENT_MAX_BACKLOG,
        client_max_backlog_bytes: int = CLIENT_MAX_BACKLOG_BYTES,
    ) -> None:
        self.socketio = socketio
        # Called with a new client's sid: each area sends that client its current state (re-sync on reconnect).
        self.connect_hooks: list[Callable[[str], None]] = []
        # Called with the sid of a client that went (closed its page, lost its link, or was dropped).
        self.disconnect_hooks: list[Callable[[str], None]] = []
        self.client_max_backlog = client_max_backlog
        self.client_max_backlog_bytes = client_max_backlog_bytes
        self.clients_dropped = 0
        self._connected: set[str] = set()
        self._dropped: OrderedDict[str, dict[str, Any]] = OrderedDict()
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
    def emit(self, event: str, payload: Any) -> None:
        """Send one event to every connected client now (for low-rate events: status, topology), except those
        past the backlog bound, which are dropped."""
        sorted_clients = self._triage()
        try:
            if sorted_clients is None or not sorted_clients.drop:
                self.socketio.emit(event, payload)
            elif sorted_clients.ready or sorted_clients.lagging:
                self.socketio.emit(event, payload, to=sorted_clients.ready + sorted_clients.lagging)
        except Exception:
            log.exception("emit of %s failed", event)

    def send_to(self, sid: str, event: str, payload: Any) -> None:
        """Send one client its state (on connect): one snapshot per area, so a bounded amount, never checked
        against the backlog bound (a big topology alone may pass it; the next broadcast checks again)."""
        if sid in self._dropped:
            return
        self.socketio.emit(event, payload, to=sid)

    def send_on_connect(self, state_events: Callable[[], list[tuple[str, Any]]]) -> None:
        """Send each new client the ``(event, data)`` pairs ``state_events()`` gives (an area's current state)."""

        def send(sid: str) -> None:
            for event, data in state_events():
                self.send_to(sid, event, data)

        self.connect_hooks.append(send)

    def is_connected(self, sid: str) -> bool:
        return sid in self._connected

    def client_disconnected(self, sid: str) -> None:
        """A client went: forget it and run the disconnect hooks (cancel what its page started)."""
        self._connected.discard(sid)
        with self._lock:
            self.ledger.forget(sid)
        for hook in self.disconnect_hooks:
            try:
                hook(sid)
            except Exception:
                log.exception("disconnect hook failed")

    # ----------------------------------------------------------------- the backlog bound
    def _backlogs(self) -> dict[str, tuple[int, int]] | None:
        """``sid -> (packets, bytes)`` waiting in each client's Engine.IO queue; None when it cannot be seen."""
        try:
            server = self.socketio.server
            participants = server.manager.rooms.get(NAMESPACE, {}).get(None)
            if participants is None:
                return {}
            sockets = server.eio.sockets
            out: dict[str, tuple[int, int]] = {}
            for sid, eio_sid in list(participants.items()):
                socket = sockets.get(eio_sid)
                if socket is None:
                    out[sid] = (0, 0)
                    continue
                packets = socket.queue.qsize()
                size = 0
                if packets:  # usually 0: a client that keeps up costs one qsize() per emit
                    waiting = list(getattr(socket.queue, "queue", ()))
                    size = sum(len(p.data) for p in waiting if p is not None and isinstance(p.data, str | bytes))
                out[sid] = (packets, size)
            return out
        except AttributeError:
            return None

    def _triage(self) -> Triage | None:
        backlogs = self._backlogs()
        if backlogs is None:
            return None
        sorted_clients = triage(
            backlogs,
            skip_packets=self.client_backlog_limit,
            drop_packets=self.client_max_backlog,
            drop_bytes=self.client_max_backlog_bytes,
        )
        for sid in sorted_clients.drop:
            self._drop_client(sid, *backlogs[sid])
        return sorted_clients

    def _drop_client(self, sid: str, packets: int, size: int) -> None:
        """Disconnect a client that stopped reading and free what waits for it; remember why for its return."""
        if sid in self._dropped:  # being dropped already: its session ends in a moment
            return
        reason = (
            f"the server disconnected this page: {packets} messages ({size} bytes) were waiting for it unread, over "
            f"the bound of {self.client_max_backlog} messages or {self.client_max_backlog_bytes} bytes "
            "(RABBITLENS_CLIENT_MAX_BACKLOG, RABBITLENS_CLIENT_MAX_BACKLOG_BYTES). It reconnected and re-synced; "
            "live events of that time were missed."
        )
        self._dropped[sid] = {"reason": reason, "backlog": packets, "backlog_bytes": size, "at": time.time()}
        while len(self._dropped) > REMEMBER_DROPPED:
            self._dropped.popitem(last=False)
        self.clients_dropped += 1
        log.warning("dropping live client %s: %d packets (%d bytes) unread", sid, packets, size)
        try:
            server = self.socketio.server
            eio_sid = server.manager.rooms.get(NAMESPACE, {}).get(None, {}).get(sid)
            socket = server.eio.sockets.get(eio_sid) if eio_sid is not None else None
            if socket is None:
                return
            # abort: no CLOSE packet behind the unread ones, and no wait for the queue to drain (it never would).
            socket.close(wait=False, abort=True)
            while True:
                try:
                    socket.queue.get_nowait()
                except Exception:  # empty
                    break
                socket.queue.task_done()
            socket.queue.put(None)  # the writer ends once its socket send gives up
        except Exception:
            log.exception("dropping live client %s failed", sid)

    # ----------------------------------------------------------------- high-rate
    def stream(self, event: str, payload: Any) -> None:
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

    def client_connected(self, sid: str, auth: Any = None) -> None:
        """A client connected (``auth``: its Socket.IO auth; ``previous_sid`` names the session it had before)."""
        self._connected.add(sid)
        with self._lock:
            self.ledger.connect(sid)
        previous = auth.get("previous_sid") if isinstance(auth, dict) else None
        if isinstance(previous, str) and previous in self._dropped:
            self.send_to(sid, "client_dropped", {"previous_sid": previous, **self._dropped.pop(previous)})
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
        stats["clients"] = len(self._connected)
        stats["clients_dropped"] = self.clients_dropped
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
        """(ready, lagging) client sids, or None when the server cannot be inspected (then: broadcast); clients
        past the hard bound are dropped."""
        sorted_clients = self._triage()
        if sorted_clients is None:
            return None
        return sorted_clients.ready, sorted_clients.lagging

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
                self.emit(*flush.events[0])
            else:
                events = [{"event": name, "data": data} for name, data in flush.events]
                dropped = dict(self.batcher.dropped)
                self.emit("batch", {"events": events, "dropped": dropped, "totals": flush.totals})
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
