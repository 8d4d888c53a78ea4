"""The pure conversions of rabbit.properties: JSON <-> pika properties, body decoding and previews."""

import base64
import datetime as dt
import decimal

import pika
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rabbit.errors import InvalidInput
from rabbit.properties import (
    MessageProperties,
    body_preview,
    decode_body,
    from_pika,
    hex_dump,
    parse_properties,
    to_pika,
)

ALL = {
    "content_type": "application/json",
    "content_encoding": "utf-8",
    "headers": {"a": 1, "b": "two", "c": True, "d": None, "e": [1, "x"], "f": {"g": 2}},
    "delivery_mode": 2,
    "priority": 9,
    "correlation_id": "c-1",
    "reply_to": "replies",
    "expiration": "60000",
    "message_id": "m-1",
    "timestamp": 1700000000,
    "type": "t",
    "user_id": "guest",
    "app_id": "lab",
}


def test_every_property_goes_to_pika_and_back_unchanged():
    props = to_pika(parse_properties(ALL))
    assert isinstance(props, pika.BasicProperties)
    assert from_pika(props) == ALL


def test_lab_headers_are_merged_with_the_users_headers():
    props = to_pika(parse_properties({"headers": {"mine": "1"}}), {"x-rabbitlens-id": "m-1"})
    assert props.headers == {"mine": "1", "x-rabbitlens-id": "m-1"}
    assert to_pika(None).headers is None


@pytest.mark.parametrize(
    ("props", "where"),
    [
        ({"expiration": 1000}, "expiration"),
        ({"expiration": "10s"}, "expiration"),
        ({"expiration": "-5"}, "expiration"),
        ({"expiration": "١٢"}, "expiration"),  # Arabic-Indic digits are digits to Python, not to the broker
        ({"priority": -1}, "priority"),
        ({"priority": 256}, "priority"),
        ({"delivery_mode": 0}, "delivery_mode"),
        ({"delivery_mode": 3}, "delivery_mode"),
        ({"timestamp": -1}, "timestamp"),
        ({"message_id": "x" * 256}, "message_id"),
        ({"app_id": "兔" * 86}, "app_id"),
        ({"headers": {"pi": 3.14}}, "headers"),
        ({"headers": {"n": 2**63}}, "headers"),
        ({"headers": {"k" * 256: 1}}, "headers"),
        ({"headers": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {}}}}}}}}}}}}, "headers"),
        ({"headers": [1, 2]}, "headers"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_properties_name_the_field(props, where):
    with pytest.raises(InvalidInput) as error:
        parse_properties(props)
    assert where in error.value.message


def test_limits_are_inclusive():
    ok = parse_properties({"priority": 255, "message_id": "x" * 255, "app_id": "兔" * 85, "expiration": "0"})
    assert ok.priority == 255


def test_pika_only_values_come_back_json_safe():
    props = pika.BasicProperties(
        headers={"raw": b"\xff\x00", "text": b"hi", "d": decimal.Decimal("1.5"), "t": dt.datetime(2024, 1, 2)},
        timestamp=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
    )
    out = from_pika(props)
    assert out["headers"]["raw"] == {"base64": base64.b64encode(b"\xff\x00").decode()}
    assert out["headers"]["text"] == "hi"
    assert out["headers"]["d"] == "1.5"
    assert out["headers"]["t"] == "2024-01-02T00:00:00"
    assert out["timestamp"] == 1704153600


def test_short_strings_pika_could_not_decode_come_back_as_base64():
    # pika leaves a short-string property that is not UTF-8 as bytes; cluster_id is not a basic property we show.
    props = pika.BasicProperties(type=b"\xff\xfe", message_id="m-1", priority=3, cluster_id="c")
    assert from_pika(props) == {
        "type": {"base64": base64.b64encode(b"\xff\xfe").decode()},
        "message_id": "m-1",
        "priority": 3,
    }


def test_decode_body_text_and_base64():
    assert decode_body("héllo") == "héllo".encode()
    assert decode_body(base64.b64encode(b"\x00\xff").decode(), "base64") == b"\x00\xff"
    with pytest.raises(InvalidInput, match="base64"):
        decode_body("not base64!", "base64")
    with pytest.raises(InvalidInput, match="over the limit"):
        decode_body("x" * 11, max_bytes=10)
    assert decode_body("x" * 10, max_bytes=10) == b"x" * 10


def test_preview_of_json_text_and_binary():
    pretty = body_preview(b'{"a":[1,2]}', "application/json")
    assert (pretty["kind"], pretty["json"]) == ("json", '{\n  "a": [\n    1,\n    2\n  ]\n}')
    text = body_preview(b"<img src=x onerror=alert(1)>", "text/html")
    assert (text["kind"], text["text"], text["json"]) == ("text", "<img src=x onerror=alert(1)>", None)
    binary = body_preview(b"\x00\x01\xfe")
    assert (binary["kind"], binary["text"]) == ("binary", None)
    assert binary["hex"].startswith("00000000  00 01 fe")


def test_preview_is_bounded_and_says_so():
    body = ("é" * 5000).encode()
    preview = body_preview(body, limit=4095)  # cuts in the middle of a two-byte character
    assert preview["truncated"] is True
    assert preview["size"] == 10000
    assert preview["kind"] == "text"
    assert len(preview["text"].encode()) <= 4095
    assert preview["hex"] is None  # text: the page draws the hex view from the text


def test_only_binary_bodies_carry_a_server_side_hex_dump():
    assert body_preview(b"plain text")["hex"] is None
    assert body_preview(b"tab\tand\nnewline")["kind"] == "text"
    binary = body_preview(b"\x01" * 5000)
    assert binary["kind"] == "binary"
    assert len(binary["hex"].splitlines()) == 64  # the first KiB, 16 bytes a line


def test_hex_dump_shows_offsets_and_printable_text():
    assert hex_dump(b"AB\n") == "00000000  41 42 0a" + " " * 39 + "  AB."
    assert hex_dump(b"x" * 17).splitlines()[1].startswith("00000010  78")


@given(st.binary(max_size=300))
def test_any_body_survives_base64_and_gets_a_preview(data):
    assert decode_body(base64.b64encode(data).decode(), "base64") == data
    preview = body_preview(data)
    assert preview["size"] == len(data)
    assert preview["kind"] in ("json", "text", "binary")


@given(
    st.dictionaries(
        st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=10),
        st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20)),
        max_size=5,
    )
)
def test_valid_headers_round_trip_through_pika_encoding(headers):
    props = to_pika(MessageProperties(headers=headers))
    decoded = pika.BasicProperties()
    decoded.decode(b"".join(props.encode()))
    assert from_pika(decoded).get("headers", {}) == headers
