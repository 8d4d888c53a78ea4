import threading
import time

import pytest

from rabbit.connection import BrokerLink
from rabbit.errors import BrokerError, BrokerUnavailable
from tests.conftest import wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def link(broker_url):
    statuses = []
    link = BrokerLink(broker_url, name="rl-test-link", on_status=statuses.append).start()
    link.statuses = statuses
    assert link.wait_connected(10)
    yield link
    link.stop()


def test_link_connects_and_reports_the_server_version(link):
    status = link.status
    assert status["connected"] is True
    assert status["state"] == "connected"
    assert status["server_version"].startswith("3.")
    assert "guest:guest" not in status["url"]
    assert [s["state"] for s in link.statuses][-1] == "connected"


def test_call_runs_on_the_owner_and_returns_its_result(link, unique):
    name = unique("q")
    result = link.call(lambda ch: ch.queue_declare(name, auto_delete=True).method.queue)
    assert result == name
    assert link.call(lambda ch: ch.queue_delete(name)) is not None


def test_a_channel_error_is_reported_and_the_next_call_works(link, unique):
    with pytest.raises(BrokerError) as info:
        link.call(lambda ch: ch.queue_declare(unique("missing"), passive=True))
    assert info.value.code == "NOT_FOUND"
    assert info.value.reply_code == 404
    assert info.value.message.startswith("no queue ")  # the code is said once, by code and reply_code
    name = unique("after")
    assert link.call(lambda ch: ch.queue_declare(name, auto_delete=True).method.queue) == name
    link.call(lambda ch: ch.queue_delete(name))


def test_many_threads_share_one_link_safely(link, unique):
    names = [unique(f"t{i}") for i in range(20)]
    errors = []

    def worker(name):
        try:
            link.call(lambda ch: ch.queue_declare(name, auto_delete=True))
            link.call(lambda ch: ch.queue_delete(name))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []


def test_an_unreachable_broker_fails_fast_and_keeps_retrying():
    statuses = []
    link = BrokerLink(
        "amqp://guest:guest@127.0.0.1:1/%2F",
        name="rl-test-nowhere",
        on_status=statuses.append,
        backoff_initial=0.05,
        backoff_max=0.1,
    ).start()
    try:
        wait_until(lambda: link.status["attempts"] >= 3, message="three connection attempts")
        assert link.connected is False
        assert link.status["state"] in ("down", "reconnecting")
        with pytest.raises(BrokerUnavailable):
            link.call(lambda ch: None)
    finally:
        link.stop()
    assert link.status["state"] == "stopped"


# ---------------------------------------------------------------------- a stuck owner is replaced (issue 15.1)
def test_a_job_the_broker_never_answers_times_out_and_the_next_call_is_fast(link, unique):
    """The real wedge, below the lab's validation: RabbitMQ strips the LF and answers DeclareOk for "ab", pika's
    blocking queue_declare waits for "a\\nb" for ever. The call times out, the owner is replaced, and the next
    call answers at once on a new connection."""
    base = unique("wedge")
    with pytest.raises(BrokerUnavailable) as info:
        link.call(lambda ch: ch.queue_declare(f"{base}\n", auto_delete=True), timeout=1.5)
    assert "did not answer within 1.5 s" in info.value.message
    started = time.monotonic()
    name = unique("after-wedge")
    assert link.call(lambda ch: ch.queue_declare(name, auto_delete=True).method.queue, timeout=5) == name
    assert time.monotonic() - started < 1.0
    link.call(lambda ch: ch.queue_delete(name))
    link.call(lambda ch: ch.queue_delete(base))  # the broker made it under the stripped name
    status = link.status
    assert status["connected"] is True and status["stuck"] is False
    assert status["recoveries"] == 1


def test_a_blocking_job_is_reported_stuck_and_the_owner_is_replaced(broker_url, unique):
    """A job that never returns (not even a pika call: shutting the socket cannot unblock it) is abandoned: the
    link reports ``stuck`` while it holds the owner, and after its timeout a new owner serves the next call."""
    from rabbit.connection import stuck_links

    link = BrokerLink(broker_url, name="rl-test-stuck", stuck_after=0.5).start()
    release = threading.Event()
    try:
        assert link.wait_connected(10)
        errors = []

        def blocked_call():
            try:
                link.call(lambda ch: release.wait(30), timeout=2.5)
            except BrokerUnavailable as exc:
                errors.append(exc)

        caller = threading.Thread(target=blocked_call)
        caller.start()
        wait_until(lambda: link.status["stuck"], timeout=5, message="the owner reported stuck")
        assert any(s["name"] == "rl-test-stuck" for s in stuck_links())
        caller.join(10)
        assert errors and "did not answer within 2.5 s" in errors[0].message
        started = time.monotonic()
        name = unique("after-block")
        assert link.call(lambda ch: ch.queue_declare(name, auto_delete=True).method.queue, timeout=5) == name
        assert time.monotonic() - started < 1.0
        link.call(lambda ch: ch.queue_delete(name))
        assert link.status["stuck"] is False
        assert not any(s["name"] == "rl-test-stuck" for s in stuck_links())
    finally:
        release.set()
        link.stop()


def test_frame_max_is_the_negotiated_frame_size(link):
    assert link.frame_max == 131072
