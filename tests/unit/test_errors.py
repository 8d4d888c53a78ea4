import pytest

from rabbit.errors import BrokerError, BrokerUnavailable, InvalidInput
from web.errors import http_status_for


def test_broker_error_names_the_reply_code_once_and_says_what_to_do():
    error = BrokerError(406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/'")
    assert error.code == "PRECONDITION_FAILED"
    assert error.to_dict() == {
        "code": "PRECONDITION_FAILED",
        "message": "inequivalent arg 'durable' for queue 'q' in vhost '/'",
        "reply_code": 406,
        "hint": "the queue exists with other flags or arguments: "
        "re-declare with the same flags, or delete the queue first",
    }
    assert error.summary() == "406 PRECONDITION_FAILED: inequivalent arg 'durable' for queue 'q' in vhost '/'"


@pytest.mark.parametrize(
    ("code", "text", "message", "hint"),
    [
        (404, "NOT_FOUND - no exchange 'x' in vhost '/'", "no exchange 'x' in vhost '/'", "declare the exchange"),
        (404, "NOT_FOUND - no queue 'q' in vhost '/'", "no queue 'q' in vhost '/'", "declare the queue"),
        (403, "ACCESS_REFUSED - exchange name 'amq.x' contains reserved prefix 'amq.*'", None, "amq."),
        (403, "ACCESS_REFUSED - access to vhost 'v' refused for user 'u'", None, "set_permissions"),
        (405, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q'", None, "exclusive"),
        (530, "NOT_ALLOWED - vhost nope not found", "vhost nope not found", "add_vhost"),
        (406, "PRECONDITION_FAILED - unknown delivery tag 7", "unknown delivery tag 7", "once"),
    ],
)
def test_each_refusal_reads_once_with_a_line_of_what_to_do(code, text, message, hint):
    error = BrokerError(code, text)
    name = error.code
    assert name not in error.message  # the name is said once, by code
    if message is not None:
        assert error.message == message
    assert hint in error.to_dict()["hint"]


def test_a_text_without_the_name_is_kept_and_an_unknown_code_has_no_hint():
    assert BrokerError(404, "no such thing").message == "no such thing"
    assert BrokerError(404, "").message == "NOT_FOUND"
    assert "hint" not in BrokerError(999, "odd").to_dict()


def test_http_status_follows_the_error_code():
    assert http_status_for(BrokerError(406, "x")) == 409
    assert http_status_for(BrokerError(404, "x")) == 404
    assert http_status_for(BrokerError(403, "x")) == 403
    assert http_status_for(BrokerError(530, "x")) == 502
    assert http_status_for(InvalidInput("bad")) == 400
    assert http_status_for(BrokerUnavailable("down")) == 503
