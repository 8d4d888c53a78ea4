"""A bad broker URL reads in plain words, once per change of state (issue 17 item 9).

Before: about 370 log lines a minute with pika's tracebacks, and the page and ``/api/health`` said
``AMQPConnectorSocketConnectError``. Now each connection owner logs one line per change, with the reason and the
next retry, and health says the same words.
"""

from __future__ import annotations

import re
import time

import pika
import pytest

from rabbit.connection import connection_parameters, describe_error
from rabbit.localnode import free_port_block
from tests.conftest import PORT_BASE, wait_until

pytestmark = pytest.mark.broker


def failure_of(url: str) -> str:
    try:
        pika.BlockingConnection(connection_parameters(url, "rabbitlens-test-bad-url")).close()
    except Exception as exc:
        return describe_error(exc, url)
    raise AssertionError(f"{url} connected")


def test_each_kind_of_bad_url_reads_in_plain_words(broker_url):
    port = free_port_block(PORT_BASE + 310, size=1)
    assert failure_of(f"amqp://guest:guest@127.0.0.1:{port}/") == f"connection refused at 127.0.0.1:{port}"
    assert failure_of("amqp://guest:not-the-password@127.0.0.1:5672/") == "authentication failed for user 'guest'"
    assert failure_of("amqp://guest:guest@127.0.0.1:5672/no-such-vhost") == "vhost 'no-such-vhost' does not exist"
    assert failure_of("amqp://guest:guest@no-such-host.invalid:5672/") == "name does not resolve: no-such-host.invalid"


def test_a_refused_broker_logs_one_line_per_owner_and_health_says_the_same_words(lab_factory):
    port = free_port_block(PORT_BASE + 320, size=1)
    lab = lab_factory(f"amqp://guest:guest@127.0.0.1:{port}/")
    reason = f"connection refused at 127.0.0.1:{port}"
    broker = wait_until(
        lambda: (b := lab.get("/api/health").json()["broker"])["attempts"] >= 4 and b, timeout=20, message="retries"
    )
    assert broker["error"] == reason
    assert broker["retry_at"] is not None and broker["retry_at"] > time.time() - 10
    time.sleep(3)  # more retries: none of them may add a line
    log = lab.log_text()
    assert "Traceback" not in log and "AMQPConnector" not in log and " ERROR " not in log, log
    lines = [line for line in log.splitlines() if "cannot connect" in line]
    assert lines and all(reason in line for line in lines), log
    owners = {re.search(r": (\S+): cannot connect", line).group(1) for line in lines}
    assert len(lines) == len(owners), log  # one line per owner, not one per attempt
    assert any("next retry at" in line for line in lines), log


def test_a_wrong_password_is_said_as_such_in_health(lab_factory):
    lab = lab_factory("amqp://guest:not-the-password@127.0.0.1:5672/")
    broker = wait_until(
        lambda: (b := lab.get("/api/health").json()["broker"])["error"] and b, timeout=20, message="an error"
    )
    assert broker["error"] == "authentication failed for user 'guest'"
    assert "not-the-password" not in lab.log_text()
