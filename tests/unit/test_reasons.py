"""Plain reasons for connection failures and alarms (pure: the exceptions are built as pika builds them)."""

from __future__ import annotations

import socket

import pika.exceptions as pex
from pika.adapters.utils.connection_workflow import AMQPConnectorSocketConnectError

from rabbit.reasons import blocked_text, describe_url, plain_reason

URL = "amqp://guest:secret@127.0.0.1:5999/%2F"


def test_the_alarm_reasons_of_the_broker_read_as_alarms():
    assert blocked_text("low on memory") == "the broker is blocking publishers: memory alarm"
    assert blocked_text(b"low on disk") == "the broker is blocking publishers: disk alarm"  # RabbitMQ 3.10's words
    assert blocked_text("something new") == "the broker is blocking publishers: something new"
    assert blocked_text(None) == "the broker is blocking publishers: an alarm"


def test_urls_are_described_with_the_amqp_defaults():
    assert describe_url(URL) == ("127.0.0.1:5999", "guest", "/")
    assert describe_url("amqp://bob@rabbit.example/lab%2Fone") == ("rabbit.example:5672", "bob", "lab/one")
    assert describe_url("amqps://[::1]/") == ("[::1]:5671", "guest", "/")


def test_a_refused_connection_is_found_inside_pikas_wrappers():
    refused = ConnectionRefusedError(111, "Connection refused")
    wrapped = pex.AMQPConnectionError(AMQPConnectorSocketConnectError(refused))
    assert plain_reason(wrapped, URL) == "connection refused at 127.0.0.1:5999"


def test_login_vhost_and_name_failures_read_plainly():
    auth = pex.ProbableAuthenticationError("ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused'")
    assert plain_reason(auth, URL) == "authentication failed for user 'guest'"
    vhost = pex.ProbableAccessDeniedError("ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost x not found'")
    assert plain_reason(vhost, "amqp://guest:guest@h/x") == "vhost 'x' does not exist"
    denied = pex.ProbableAccessDeniedError("(530) 'NOT_ALLOWED - access to vhost 'x' refused for user 'u''")
    assert plain_reason(denied, "amqp://u:p@h/x") == "user 'u' may not use vhost 'x'"
    unresolved = socket.gaierror(-2, "Name or service not known")
    assert plain_reason(unresolved, "amqp://no-such.invalid/") == "name does not resolve: no-such.invalid"


def test_a_broker_close_names_its_code_once():
    forced = pex.ConnectionClosedByBroker(320, "CONNECTION_FORCED - broker forced connection closure")
    assert plain_reason(forced, URL) == "closed by the broker: 320 CONNECTION_FORCED: broker forced connection closure"


def test_the_password_never_appears():
    for exc in (ConnectionRefusedError(111, "Connection refused"), socket.gaierror(-2, "x"), ValueError("odd")):
        assert "secret" not in plain_reason(exc, URL)
