"""The publisher's pure helpers: lab ids, routing key limits, the cached event parts of a request."""

import pytest

from rabbit.consumer import check_knobs
from rabbit.errors import InvalidInput
from rabbit.properties import parse_properties
from rabbit.publisher import PublishRequest, new_message_id
from rabbit.validation import check_routing_key


def test_lab_ids_are_unique_and_prefixed():
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("m-") for i in ids)
    assert new_message_id("b").startswith("b-")


def test_routing_keys_are_limited_in_bytes_not_characters():
    check_routing_key("k" * 255)
    check_routing_key("兔" * 85)
    with pytest.raises(InvalidInput):
        check_routing_key("兔" * 86)


def test_a_request_computes_its_preview_and_properties_once():
    request = PublishRequest("", "q", b'{"a": 1}', parse_properties({"content_type": "application/json"}))
    assert request.preview()["kind"] == "json"
    assert request.preview() is request.preview()
    assert request.properties_json() == {"content_type": "application/json"}
    assert "x-rabbitlens-id" not in (request.properties_json().get("headers") or {})


@pytest.mark.parametrize(
    ("knobs", "text"),
    [
        (("auto", 0, 0, "reject"), "ack=manual"),
        (("auto", 0, 0, "nack_requeue"), "ack=manual"),
        (("manual", 1001, 0, "ack"), "prefetch"),
        (("manual", 0, 60001, "ack"), "work_ms"),
        (("sometimes", 0, 0, "ack"), "ack must be"),
        (("manual", 0, 0, "explode"), "on_message"),
    ],
)
def test_consumer_knobs_that_mean_nothing_are_refused(knobs, text):
    with pytest.raises(InvalidInput, match=text):
        check_knobs(*knobs)


def test_auto_ack_with_crash_is_allowed():
    check_knobs("auto", 0, 0, "crash")
    check_knobs("manual", 1000, 60000, "nack_requeue")
