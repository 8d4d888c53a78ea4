"""Spies: watch a queue without taking its messages (no Flask, no Socket.IO, no pika here).

A spy is a :class:`~rabbit.tap.Tap` whose exclusive, auto-delete, server-named queue (the *shadow queue*) is bound
with every binding the spied queue has, so the broker routes it a copy of every message it routes to that queue
through an exchange; the queue's own consumers get theirs as before. The topology service's changes (its poll, or
the lab's own changes) keep the shadow's bindings in step. A message published straight to the queue through the
default exchange cannot be mirrored (a queue cannot be bound to the default exchange): the trace shows those.
Without the management API the lab knows only the bindings it made itself, and says so.

The service reports through two injected sinks: ``on_event("spy", payload)`` per message (the ``tap`` payload plus
``spy_id``) and ``on_list(spies)`` when the list or a spy's state changes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from rabbit import validation
from rabbit.errors import LabError
from rabbit.properties import json_safe
from rabbit.tap import Binding, Tap

log = logging.getLogger(__name__)

OnEvent = Callable[[str, dict[str, Any]], None]
DEFAULT_EXCHANGE_NOTE = (
    "Messages published straight to {queue!r} through the default exchange (routing key {queue!r}) cannot be "
    "mirrored: no queue can be bound to the default exchange. To see those too, turn the trace on "
    '(POST /api/trace {{"enabled": true}}).'
)
LAB_ONLY_NOTE = (
    " Without the management API the lab knows only the bindings it made itself: bindings another application "
    "made to {queue!r} are not mirrored (turn the management plugin on to mirror them all)."
)


class TopologySource(Protocol):
    """What a spy needs of the topology service: its listing and its broker link."""

    link: Any

    def snapshot(self, max_age: float = 0.0) -> dict[str, Any]: ...


class Reserver(Protocol):
    """A limit checked and reserved under one lock (``web.limits.Slots``)."""

    def reserve(self, in_use: Callable[[], int]) -> contextlib.AbstractContextManager[None]: ...


def bindings_of(snapshot: Mapping[str, Any], queue: str) -> list[Binding]:
    """The bindings of ``queue`` in a topology snapshot, as ``(source, key, arguments)``; the default exchange's
    implicit binding is left out (it cannot be mirrored)."""
    found: list[Binding] = []
    for b in snapshot.get("bindings", ()):
        if b.get("destination_type") != "queue" or b.get("destination") != queue or not b.get("source"):
            continue
        args = dict(b.get("arguments") or {})
        binding = (b["source"], b.get("routing_key", ""), args or None)
        if binding not in found:
            found.append(binding)
    return found


class Spy:
    """One spied queue: its shadow tap and what the answer says about it."""

    def __init__(self, spy_id: str, queue: str, tap: Tap, source: str | None) -> None:
        self.id = spy_id
        self.queue = queue
        self.tap = tap
        self.source = source  # "management" (every binding of the vhost) or "lab" (the lab's own)
        self.queue_exists = True
        self.created = time.time()

    def note(self) -> str:
        note = DEFAULT_EXCHANGE_NOTE.format(queue=self.queue)
        if self.source != "management":
            note += LAB_ONLY_NOTE.format(queue=self.queue)
        return note

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "shadow_queue": self.tap.queue,
            "bindings": [
                {"source": s, "routing_key": k, "arguments": json_safe(a) if a else {}} for s, k, a in self.tap.bindings
            ],
            "mirrors_default_exchange": False,
            "note": self.note(),
            "bindings_from": self.source,
            "queue_exists": self.queue_exists,
            "state": self.tap.state,
            "error": self.tap.error,
            "count": self.tap.count,
            "errors": self.tap.errors,
            "created": self.created,
        }


class SpyService:
    """The spies of one lab. ``refresh(snapshot)`` (from the topology feed) re-binds them in the background."""

    def __init__(
        self,
        amqp_url: str,
        topology: TopologySource,
        slots: Reserver,
        *,
        on_event: OnEvent,
        on_list: Callable[[list[dict[str, Any]]], None],
        timeout: float = 10.0,
    ) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.slots = slots
        self.spies: dict[str, Spy] = {}
        self._on_event = on_event
        self._on_list = on_list
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pending: Mapping[str, Any] | None = None
        self._last: Mapping[str, Any] | None = None  # the latest topology seen, for a spy that reconnected
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._worker: threading.Thread | None = None

    # ----------------------------------------------------------------- control
    def create(self, queue: str) -> dict[str, Any]:
        """Spy on ``queue`` (404 when it does not exist); the new spy's description."""
        queue = validation.check_name(queue, "queue")
        with self.slots.reserve(lambda: len(self.spies)):  # spies still starting count too
            self.topology.link.call(lambda ch: ch.queue_declare(queue, passive=True), timeout=self._timeout)
            snapshot = self.topology.snapshot()  # fresh: bindings made a moment ago by anyone count
            spy_id = uuid.uuid4().hex[:8]
            tap = Tap(
                self.amqp_url,
                "",
                bindings=bindings_of(snapshot, queue),
                on_event=lambda _name, payload: self._on_event("spy", {**payload, "spy_id": spy_id}),
                on_change=lambda _tap: self._tap_changed(),
                tap_id=spy_id,
            )
            tap.start(timeout=self._timeout)
            spy = Spy(spy_id, queue, tap, snapshot.get("source"))
            with self._lock:
                self.spies[spy_id] = spy
        self._start_worker()
        self._changed()
        return spy.describe()

    def list(self) -> list[dict[str, Any]]:
        return [spy.describe() for spy in list(self.spies.values())]

    def delete(self, spy_id: str) -> None:
        with self._lock:
            spy = self.spies.pop(spy_id, None)
        if spy is None:
            raise LabError(f"no spy {spy_id!r} (see GET /api/spies)", code="NOT_FOUND")
        spy.tap.stop()
        self._changed()

    def stop(self) -> None:
        """The app stops: every spy goes (closing its connection deletes its shadow queue)."""
        self._stopped.set()
        self._wake.set()
        with self._lock:
            spies, self.spies = list(self.spies.values()), {}
        for spy in spies:
            spy.tap.stop()

    def owns(self, queue: str | None) -> bool:
        """Whether ``queue`` is one of the spies' shadow queues (the trace leaves their deliveries out)."""
        return queue is not None and any(spy.tap.queue == queue for spy in list(self.spies.values()))

    def lab_bindings(self) -> list[dict[str, Any]]:
        """The shadow queues' bindings, for predictions: they take copies, marked as the lab's spy."""
        return [
            {
                "source": source,
                "destination": spy.tap.queue,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": dict(args or {}),
                "lab": "spy",
            }
            for spy in self._active()
            for source, key, args in list(spy.tap.bindings)
        ]

    # ----------------------------------------------------------------- keeping in step
    def refresh(self, snapshot: Mapping[str, Any]) -> None:
        """A new topology: re-bind the spies (in the service's own thread: this returns at once)."""
        self._last = snapshot
        if self.spies:
            self._pending = snapshot
            self._wake.set()

    def sync(self, snapshot: Mapping[str, Any]) -> bool:
        """Bind every spy's shadow queue exactly as its queue is bound in ``snapshot``; whether anything changed."""
        changed = False
        queues = {q.get("name") for q in snapshot.get("queues", ())}
        for spy in self._active():
            exists = spy.queue in queues or snapshot.get("source") != "management"
            wanted = bindings_of(snapshot, spy.queue)
            try:
                added, removed = spy.tap.set_bindings(wanted, timeout=self._timeout)
            except LabError as exc:
                log.warning("spy %s on %r: could not follow its bindings: %s", spy.id, spy.queue, exc.message)
                spy.tap.error = f"could not follow the bindings of {spy.queue!r}: {exc.message}"[:500]
                changed = True
                continue
            if added or removed or exists != spy.queue_exists or spy.source != snapshot.get("source"):
                spy.queue_exists = exists
                spy.source = snapshot.get("source")
                changed = True
        if changed:
            self._changed()
        return changed

    def _active(self) -> Iterator[Spy]:
        for spy in list(self.spies.values()):
            if spy.tap.state == "active" and spy.tap.queue:
                yield spy

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="rabbitlens-spies", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait()
            self._wake.clear()
            snapshot, self._pending = self._pending, None
            if snapshot is None or self._stopped.is_set():
                continue
            try:
                self.sync(snapshot)
            except Exception:
                log.exception("following the spied queues' bindings failed")

    def _tap_changed(self) -> None:
        """A shadow tap changed state: after a reconnect it re-bound what it had, so catch up with the topology."""
        self._changed()
        if self._last is not None:
            self.refresh(self._last)

    def _changed(self) -> None:
        with contextlib.suppress(Exception):
            self._on_list(self.list())
