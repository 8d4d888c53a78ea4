"""The lab's publisher: publisher confirms on, basic.return caught, bursts with many messages in flight.

Single messages go out on the publisher's own connection (a :class:`BrokerLink`), one confirm at a time; a
burst runs on a connection of its own with up to a thousand messages waiting for their confirms
(:mod:`rabbit.burst`), so neither ever stalls the app's main link. Every message carries its lab id in the
``x-rabbitlens-id`` header and its publish time (epoch ms) in ``x-rabbitlens-published``, so a consumer can match
a delivery to its publish and measure the time in between.

The AMQP ``mandatory`` flag is always set on the wire: that is how the lab learns whether the broker routed a
message at all. A message published with ``mandatory=False`` that comes back is reported as ``dropped``
(what the broker does for a plain publisher); with ``mandatory=True`` as ``returned`` (basic.return).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel

from rabbit.burst import ConfirmedBurst
from rabbit.confirms import Confirmed
from rabbit.connection import BLOCKED_CONNECTION_TIMEOUT_S, BrokerLink
from rabbit.errors import BrokerBlocked, BrokerUnavailable, LabError
from rabbit.message_view import ID_HEADER, TIME_HEADER
from rabbit.properties import MessageProperties, body_preview, from_pika, pika_from_values, property_values, to_pika

log = logging.getLogger(__name__)

BURST_CHUNK = 200  # a burst reports its progress every this many confirms

EventSink = Callable[[str, dict[str, Any]], None]


class _QuietReturns(logging.Filter):
    """pika logs a warning for every returned message; the lab reports returns itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Published message was returned")


_quiet_returns = _QuietReturns()


def new_message_id(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def count_outcome(totals: dict[str, int], outcome: Outcome, mandatory: bool) -> None:
    """Add one confirmed copy of a burst to the burst's totals (acked but unroutable counts as returned or dropped,
    a nack as nacked)."""
    totals["published"] += 1
    totals["confirmed"] += outcome.confirmed
    totals["nacked"] += not outcome.confirmed
    totals["routed"] += outcome.routed
    if outcome.confirmed and not outcome.routed:
        totals["returned" if mandatory else "dropped"] += 1


@dataclass
class PublishRequest:
    exchange: str
    routing_key: str
    body: bytes
    properties: MessageProperties | None = None
    mandatory: bool = False
    predicted: list[str] | None = None
    # What qualifies the prediction (a lab tap takes it, bindings unknown...), shown with each published message.
    prediction_notes: list[str] = field(default_factory=list)
    # check(outcome) -> a dict saying why prediction and broker differ (after a re-read), or None when they agree.
    check: Callable[[Outcome], dict[str, Any] | None] | None = field(default=None, repr=False)
    # on_id(id): the message's lab id (a burst's: its burst id) before it goes out, so that a delivery that
    # beats the confirm can still be matched to the request.
    on_id: Callable[[str], None] | None = field(default=None, repr=False)
    _preview: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _properties_json: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _pika_values: dict[str, Any] | None = field(default=None, init=False, repr=False)

    def pika_properties(self, message_id: str, published_at: float) -> pika.BasicProperties:
        """The wire properties of one copy: the request's own plus the lab's id and publish-time headers."""
        if self._pika_values is None:
            self._pika_values = property_values(self.properties)
        return pika_from_values(self._pika_values, {ID_HEADER: message_id, TIME_HEADER: int(published_at * 1000)})

    def properties_json(self) -> dict[str, Any]:
        """The properties as a consumer will see them, without the lab's own headers (computed once)."""
        if self._properties_json is None:
            self._properties_json = from_pika(to_pika(self.properties))
        return self._properties_json

    def preview(self) -> dict[str, Any]:
        """The body as the browser sees it (computed once, even for a burst of thousands)."""
        if self._preview is None:
            content_type = self.properties.content_type if self.properties is not None else None
            self._preview = body_preview(self.body, content_type)
        return self._preview


@dataclass
class Outcome:
    """What happened to one published message."""

    id: str
    confirmed: bool
    routed: bool
    returned: dict[str, Any] | None = None
    published_at: float = field(default_factory=time.time)
    prediction_check: dict[str, Any] | None = None

    def dropped(self, mandatory: bool) -> bool:
        """Acked but routed nowhere and not asked back: what the broker does with a plain unroutable publish
        (a nacked message was refused, not dropped)."""
        return self.confirmed and not self.routed and not mandatory


class Publisher:
    """Publishes with confirms on its own connection; reports ``published`` / ``returned`` / ``publish_progress``."""

    def __init__(
        self,
        url: str,
        on_event: EventSink,
        *,
        name: str = "rabbitlens-publisher",
        timeout: float = 10.0,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.on_event = on_event
        self.timeout = timeout
        self.url = url
        self.name = name
        self.link = BrokerLink(url, name=name, on_status=on_status)
        self._lock = threading.Lock()
        self._bursts: set[ConfirmedBurst] = set()
        self._stopped = False
        self._confirming: weakref.WeakSet[BlockingChannel] = weakref.WeakSet()
        pika_log = logging.getLogger("pika.adapters.blocking_connection")
        if _quiet_returns not in pika_log.filters:
            pika_log.addFilter(_quiet_returns)

    def start(self) -> Publisher:
        self.link.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            bursts = list(self._bursts)
        for burst in bursts:
            burst.cancel()
        self.link.stop()

    # ------------------------------------------------------------------ publishing
    def publish(self, request: PublishRequest) -> Outcome:
        """Publish one message and wait for the broker's confirm. Broker refusals raise ``BrokerError``."""
        self._refuse_if_blocked()
        message_id = new_message_id()
        if request.on_id is not None:
            request.on_id(message_id)
        outcome = self._call_unless_blocked(
            lambda ch: self._publish_one(ch, request, message_id), late=lambda o: self._report(request, o)
        )
        self._report(request, outcome)
        return outcome

    @property
    def blocked(self) -> str | None:
        """Why the broker blocks the lab's publishes now (a memory or disk alarm), or None."""
        return self.link.blocked

    def _refuse_if_blocked(self) -> None:
        reason = self.link.blocked
        if reason:
            raise BrokerBlocked(reason)

    def _call_unless_blocked(
        self, fn: Callable[[BlockingChannel], Outcome], late: Callable[[Outcome], None] | None = None
    ) -> Outcome:
        """``link.call(fn)``, but answered at once when the broker blocks the connection meanwhile: the publish
        that meets an alarm waits for its confirm until the alarm clears, and nobody should wait with it.
        ``late`` gets the outcome of such a publish if it is confirmed after all (the alarm cleared in time)."""
        done: Future = Future()
        gave_up = threading.Event()
        settled = threading.Lock()

        def report_late(job: Future) -> None:
            if late is not None and not job.cancelled() and job.exception() is None:
                late(job.result())

        def run() -> None:
            try:
                outcome = self.link.call(fn, timeout=self.timeout)
            except BrokerBlocked as exc:  # the link keeps the connection while blocked: the job may still end
                if exc.pending is not None:
                    exc.pending.add_done_callback(report_late)
                done.set_exception(exc)
            except BaseException as exc:
                done.set_exception(exc)
            else:
                with settled:  # either the caller takes the outcome or, once it gave up, ``late`` does
                    if not gave_up.is_set():
                        done.set_result(outcome)
                        return
                if late is not None:
                    late(outcome)

        threading.Thread(target=run, name=f"{self.name}-publish", daemon=True).start()
        while True:
            try:
                return done.result(timeout=0.02)
            except FutureTimeout:
                reason = self.link.blocked
                if reason:
                    with settled:
                        if done.done():
                            continue
                        gave_up.set()
                    raise BrokerBlocked(
                        f"{reason}; this message met the alarm on its way: it goes out if the alarm clears within "
                        f"{BLOCKED_CONNECTION_TIMEOUT_S:g} s (a published event then says so), else its connection "
                        "is closed and it is lost"
                    ) from None

    def burst(
        self,
        request: PublishRequest,
        count: int,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Publish ``count`` copies (ids ``b-<token>-1`` ... ``-<count>``), many in flight, each one confirmed.

        Runs a :class:`~rabbit.burst.ConfirmedBurst` on a connection of its own in the calling thread. Returns the
        burst's totals; ``on_progress`` gets the running totals every :data:`BURST_CHUNK` confirms. A broker error
        (say the exchange is deleted mid-burst) stops the burst and is raised, after a last progress report of
        what was confirmed until then.
        """
        self._refuse_if_blocked()
        burst_id = new_message_id("b")
        if request.on_id is not None:
            request.on_id(burst_id)
        totals = {"published": 0, "confirmed": 0, "nacked": 0, "routed": 0, "returned": 0, "dropped": 0}
        first_returned: dict[str, Any] | None = None

        def progress() -> None:
            if on_progress is not None:
                on_progress({"id": burst_id, "count": count, "done": totals["published"], **totals})

        def make_message(number: int) -> tuple[str, pika.BasicProperties, float]:
            message_id = f"{burst_id}-{number}"
            now = time.time()
            return message_id, request.pika_properties(message_id, now), now

        def on_confirmed(confirmed: Confirmed) -> None:
            nonlocal first_returned
            returned = confirmed.returned if request.mandatory else None
            outcome = Outcome(confirmed.message_id, confirmed.acked, confirmed.routed, returned, confirmed.published_at)
            count_outcome(totals, outcome, request.mandatory)
            if returned is not None and first_returned is None:
                first_returned = returned
            self._report(request, outcome)
            if totals["published"] % BURST_CHUNK == 0 or totals["published"] == count:
                progress()

        burst = ConfirmedBurst(
            self.url,
            exchange=request.exchange,
            routing_key=request.routing_key,
            body=request.body,
            count=count,
            make_message=make_message,
            id_of_return=lambda props: (props.headers or {}).get(ID_HEADER),
            on_confirmed=on_confirmed,
            name=f"{self.name}-burst",
            idle_timeout=self.timeout,
        )
        with self._lock:
            if self._stopped:
                raise BrokerUnavailable("the publisher is stopped")
            self._bursts.add(burst)
        started = time.monotonic()
        try:
            burst.run()
        except LabError:
            if totals["published"] % BURST_CHUNK:
                progress()  # what was confirmed before the error
            raise
        finally:
            with self._lock:
                self._bursts.discard(burst)
        elapsed = time.monotonic() - started
        return {
            "id": burst_id,
            "count": count,
            "ids": {"first": f"{burst_id}-1", "last": f"{burst_id}-{count}"},
            "counts": totals,
            "confirmed": totals["confirmed"] == count,
            "routed": totals["routed"] == count,
            "returned": first_returned,
            "seconds": round(elapsed, 3),
            "rate": round(count / elapsed, 1) if elapsed > 0 else None,
        }

    # ------------------------------------------------------------------ owner side
    def _publish_one(self, channel: BlockingChannel, request: PublishRequest, message_id: str) -> Outcome:
        if channel not in self._confirming:
            channel.confirm_delivery()
            self._confirming.add(channel)
        now = time.time()
        props = request.pika_properties(message_id, now)
        try:
            channel.basic_publish(request.exchange, request.routing_key, request.body, props, mandatory=True)
        except pex.UnroutableError as exc:
            returned = _describe_return(exc.messages[0]) if exc.messages else {}
            return Outcome(message_id, True, False, returned if request.mandatory else None, now)
        except pex.NackError:
            return Outcome(message_id, False, False, None, now)
        return Outcome(message_id, True, True, None, now)

    def _report(self, request: PublishRequest, outcome: Outcome) -> None:
        """Tell the browsers about a published message; the message is out, so a failure here is only logged
        (an error answer would make the caller publish it again)."""
        if request.check is not None:
            try:
                outcome.prediction_check = request.check(outcome)
            except Exception:
                log.exception("prediction check failed")
        try:
            self._report_unguarded(request, outcome)
        except Exception:
            log.exception("reporting published message %s failed", outcome.id)

    def _report_unguarded(self, request: PublishRequest, outcome: Outcome) -> None:
        event = {
            "id": outcome.id,
            "exchange": request.exchange,
            "routing_key": request.routing_key,
            "properties": request.properties_json(),
            "size": len(request.body),
            "body": request.preview(),
            "mandatory": request.mandatory,
            "predicted": request.predicted,
            "prediction_notes": request.prediction_notes,
            "prediction_check": outcome.prediction_check,
            "confirmed": outcome.confirmed,
            "routed": outcome.routed,
            "dropped": outcome.dropped(request.mandatory),
            "time": outcome.published_at,
        }
        self._emit("published", event)
        if outcome.returned is not None:
            self._emit("returned", {"id": outcome.id, **outcome.returned, "time": outcome.published_at})

    def _emit(self, name: str, payload: dict[str, Any]) -> None:
        try:
            self.on_event(name, payload)
        except Exception:
            log.exception("event sink failed for %s", name)


def _describe_return(message: Any) -> dict[str, Any]:
    method: pika.spec.Basic.Return = message.method
    return {
        "reply_code": method.reply_code,
        "reply_text": method.reply_text,
        "exchange": method.exchange,
        "routing_key": method.routing_key,
    }
