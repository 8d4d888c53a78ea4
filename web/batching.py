"""Adaptive batching of high-rate live events, and the per-client view ledger (pure: no I/O, no clock of its own).

The path broker -> server -> browser has two regimes (see the stack notes): while traffic is light, one emit per
event gives sub-millisecond latency; under load, one emit per event caps the rate near 7k/s while lists of events
reach 40k/s. :class:`AdaptiveBatcher` gets both with a token bucket on *emits*: each flush costs a token, tokens
come back at ``rate`` per second up to ``burst``. Light traffic never runs out of tokens, so each event leaves at
once; a flood runs the bucket dry and events wait at most ``1 / rate`` seconds, then leave together in one batch
of at most ``max_batch`` events.

Memory is bounded whatever the rate: at most ``max_pending`` events wait; beyond that the oldest are dropped from
the *view* (never from the broker) and counted, exactly, per event name. :class:`ViewLedger` then decides, for one
flush, what each browser gets: a client whose send queue is backed up is skipped and the skipped events are
counted as dropped for that client only, so a slow browser never makes the server buffer without bound.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_PENDING = 4000
DEFAULT_RATE = 250.0  # flushes per second under load (a batch waits at most 4 ms)
DEFAULT_BURST = 25  # flushes in a row before batching starts
_EPSILON = 1e-9  # float slack, so that waiting exactly delay() seconds is always enough


@dataclass
class Flush:
    """What leaves the batcher at one time."""

    events: list[tuple[str, Any]]
    # Events dropped from the view (oldest first) since the previous flush, by event name.
    dropped: dict[str, int]
    # Events in this flush, by name.
    counts: dict[str, int]
    # Every event ever added, by name (dropped or not): a snapshot.
    totals: dict[str, int]


class AdaptiveBatcher:
    """Collects events; says when to flush; hands out flushes of at most ``max_batch`` events.

    Use: ``add(name, data)`` for each event; a flusher asks :meth:`delay` how long to wait (``None``: nothing
    to send), then calls :meth:`take`. ``clock`` returns seconds (monotonic); inject one to test without time.
    """

    def __init__(
        self,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_pending: int = DEFAULT_MAX_PENDING,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1 or max_pending < max_batch or rate <= 0 or burst < 1:
            raise ValueError("need max_batch >= 1, max_pending >= max_batch, rate > 0, burst >= 1")
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._pending: deque[tuple[str, Any]] = deque()
        self._tokens = float(burst)
        self._refilled_at = clock()
        self._dropped_since: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.flushes = 0
        self.batches = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, name: str, data: Any) -> None:
        """Queue one event; if the queue is full, drop the oldest one (counted under its own name)."""
        self.totals[name] += 1
        if len(self._pending) >= self.max_pending:
            old_name, _ = self._pending.popleft()
            self.dropped[old_name] += 1
            self._dropped_since[old_name] += 1
        self._pending.append((name, data))

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._refilled_at
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._refilled_at = now

    def delay(self) -> float | None:
        """Seconds until :meth:`take` has something to hand out (0: now), or None when nothing waits."""
        if not self._pending:
            return None
        self._refill()
        if self._tokens >= 1.0 - _EPSILON:
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def take(self) -> Flush | None:
        """The next flush, or None when nothing waits or the flush rate is spent (ask :meth:`delay`)."""
        if not self._pending:
            return None
        self._refill()
        if self._tokens < 1.0 - _EPSILON:
            return None
        self._tokens = max(0.0, self._tokens - 1.0)
        count = min(self.max_batch, len(self._pending))
        events = [self._pending.popleft() for _ in range(count)]
        counts = Counter(name for name, _ in events)
        dropped = dict(self._dropped_since)
        self._dropped_since.clear()
        self.flushes += 1
        if count > 1:
            self.batches += 1
        return Flush(events=events, dropped=dropped, counts=dict(counts), totals=dict(self.totals))

    def stats(self) -> dict[str, Any]:
        return {
            "pending": len(self._pending),
            "totals": dict(self.totals),
            "dropped": dict(self.dropped),
            "flushes": self.flushes,
            "batches": self.batches,
        }


@dataclass
class Emit:
    """One Socket.IO emit: ``event`` with ``data`` to the clients ``sids``."""

    event: str
    data: Any
    sids: list[str]


@dataclass
class _ClientView:
    dropped: Counter[str] = field(default_factory=Counter)
    told: dict[str, int] = field(default_factory=dict)  # the ``dropped`` the client last received


class ViewLedger:
    """Per-client drop counts and the emits of a flush.

    A client's ``dropped`` counts (since it connected, by event name) grow with the view drops of the batcher
    (every client misses those) and with the flushes it was skipped for because its send queue was backed up.
    A flush of one event goes out under the event's own name to each client whose drop counts it already knows;
    everything else goes out as ``batch`` ``{"events": [{"event", "data"}...], "dropped": {...}, "totals": {...}}``.
    Clients with the same drop counts share one emit (the payload is encoded once).
    """

    def __init__(self) -> None:
        self._clients: dict[str, _ClientView] = {}

    def connect(self, sid: str) -> None:
        self._clients[sid] = _ClientView()

    def forget(self, sid: str) -> None:
        self._clients.pop(sid, None)

    def sids(self) -> list[str]:
        return list(self._clients)

    def dropped(self, sid: str) -> dict[str, int]:
        view = self._clients.get(sid)
        return dict(view.dropped) if view else {}

    def untold(self, ready: Iterable[str]) -> list[str]:
        """The ``ready`` clients whose drop counts changed since they were last told."""
        out = []
        for sid in ready:
            view = self._clients.get(sid)
            if view is not None and {n: c for n, c in view.dropped.items() if c} != view.told:
                out.append(sid)
        return out

    def notices(self, ready: Iterable[str], totals: dict[str, int]) -> list[Emit]:
        """Event-less ``batch`` emits that tell ``ready`` clients their new drop counts (when traffic stopped
        right after they were skipped, no later flush would carry them)."""
        groups: dict[tuple[tuple[str, int], ...], list[str]] = {}
        for sid in self.untold(ready):
            view = self._clients[sid]
            current = {name: n for name, n in view.dropped.items() if n}
            view.told = current
            groups.setdefault(tuple(sorted(current.items())), []).append(sid)
        return [
            Emit("batch", {"events": [], "dropped": dict(key), "totals": totals}, sids) for key, sids in groups.items()
        ]

    def plan(self, flush: Flush, ready: Iterable[str], lagging: Iterable[str] = ()) -> list[Emit]:
        """The emits for ``flush``: ``ready`` clients get it, ``lagging`` ones have it counted as dropped.

        Clients the ledger holds that are in neither list are gone and are forgotten.
        """
        ready = list(dict.fromkeys(ready))
        lagging = [sid for sid in dict.fromkeys(lagging) if sid not in ready]
        present = set(ready) | set(lagging)
        for sid in [sid for sid in self._clients if sid not in present]:
            del self._clients[sid]
        for sid in present:
            view = self._clients.setdefault(sid, _ClientView())
            view.dropped.update(flush.dropped)
        for sid in lagging:
            self._clients[sid].dropped.update(flush.counts)

        singles: list[str] = []
        groups: dict[tuple[tuple[str, int], ...], list[str]] = {}
        for sid in ready:
            view = self._clients[sid]
            current = {name: n for name, n in view.dropped.items() if n}
            if len(flush.events) == 1 and current == view.told:
                singles.append(sid)
            else:
                groups.setdefault(tuple(sorted(current.items())), []).append(sid)
            view.told = current

        emits: list[Emit] = []
        if singles:
            name, data = flush.events[0]
            emits.append(Emit(name, data, singles))
        if groups:
            items = [{"event": name, "data": data} for name, data in flush.events]
            for key, sids in groups.items():
                emits.append(Emit("batch", {"events": items, "dropped": dict(key), "totals": flush.totals}, sids))
        return emits


@dataclass
class Triage:
    """Where each client stands before an emit, from what waits in its send queue."""

    ready: list[str]
    lagging: list[str]  # skipped by the high-rate feed (its events count as dropped for it)
    drop: list[str]  # past the hard bound: disconnect it (a tab that stopped reading)


def triage(backlogs: dict[str, tuple[int, int]], *, skip_packets: int, drop_packets: int, drop_bytes: int) -> Triage:
    """Sort clients by their backlog ``(packets, bytes)`` waiting to be written to them.

    Past ``skip_packets`` a client misses high-rate events (counted, told later); past ``drop_packets`` or
    ``drop_bytes`` it is dropped, whatever the event: low-rate broadcasts (topology, consumers, progress) would
    otherwise pile up for a client that never reads, without bound.
    """
    out = Triage([], [], [])
    for sid, (packets, size) in backlogs.items():
        if packets > drop_packets or size > drop_bytes:
            out.drop.append(sid)
        elif packets > skip_packets:
            out.lagging.append(sid)
        else:
            out.ready.append(sid)
    return out
