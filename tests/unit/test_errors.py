from rabbit.errors import BrokerError, BrokerUnavailable, InvalidInput
from web.errors import http_status_for


def test_broker_error_names_the_reply_code_and_keeps_the_broker_text():
    error = BrokerError(406, "PRECONDITION_FAILED - inequivalent arg 'durable'")
    assert error.code == "PRECONDITION_FAILED"
    assert error.to_dict() == {
        "code": "PRECONDITION_FAILED",
        "message": "PRECONDITION_FAILED - inequivalent arg 'durable'",
        "reply_code": 406,
    }


def test_http_status_follows_the_error_code():
    assert http_status_for(BrokerError(406, "x")) == 409
    assert http_status_for(BrokerError(404, "x")) == 404
    assert http_status_for(BrokerError(403, "x")) == 403
    assert http_status_for(BrokerError(530, "x")) == 502
    assert http_status_for(InvalidInput("bad")) == 400
    assert http_status_for(BrokerUnavailable("down")) == 503
