import pytest
from hypothesis import given
from hypothesis import strategies as st

from rabbit.errors import InvalidInput
from rabbit.validation import (
    EXCHANGE_TYPES,
    check_destination_type,
    check_exchange_arguments,
    check_exchange_type,
    check_headers,
    check_name,
    check_queue_arguments,
    check_routing_key,
    check_table,
    check_table_size,
    control_character,
    table_encoded_size,
    table_limit,
)


# --------------------------------------------------------------------------- names
def test_name_of_255_ascii_bytes_is_accepted():
    assert check_name("a" * 255, "queue name") == "a" * 255


def test_name_of_256_ascii_bytes_is_refused_with_the_byte_count():
    with pytest.raises(InvalidInput, match=r"queue name is 256 bytes of UTF-8; AMQP allows at most 255"):
        check_name("a" * 256, "queue name")


def test_name_length_counts_utf8_bytes_not_characters():
    assert check_name("兔" * 85, "queue name") == "兔" * 85  # 255 bytes
    with pytest.raises(InvalidInput, match=r"258 bytes of UTF-8 \(86 characters\)"):
        check_name("兔" * 86, "queue name")


def test_empty_name_is_refused_unless_allowed():
    with pytest.raises(InvalidInput, match="exchange name must not be empty"):
        check_name("", "exchange name")
    assert check_name("", "queue name", allow_empty=True) == ""


def test_name_with_a_lone_surrogate_is_not_valid_utf8():
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        check_name("bad\ud800name", "queue name")


@pytest.mark.parametrize("value", [None, 5, True, ["a"], {"a": 1}])
def test_name_must_be_a_string(value):
    with pytest.raises(InvalidInput, match="must be a string"):
        check_name(value, "queue name")


@pytest.mark.parametrize("name", ["a/b", "50%", "with space", "ünïcødé 兔", "a.b.c", "#", "*", "amq.x"])
def test_names_with_slashes_percent_spaces_unicode_pass_validation(name):
    assert check_name(name, "name") == name


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1))
def test_any_valid_text_is_a_name_exactly_when_it_fits_255_bytes(text):
    fits = len(text.encode("utf-8")) <= 255
    if fits:
        assert check_name(text, "name") == text
    else:
        with pytest.raises(InvalidInput):
            check_name(text, "name")


# --------------------------------------------------------------------------- routing keys
def test_empty_routing_key_is_allowed():
    assert check_routing_key("") == ""


def test_routing_key_over_255_bytes_is_refused():
    with pytest.raises(InvalidInput, match="routing key is 256 bytes"):
        check_routing_key("k" * 256)


def test_routing_key_must_be_text():
    with pytest.raises(InvalidInput, match="routing key must be a string"):
        check_routing_key(12)


# --------------------------------------------------------------------------- types
@pytest.mark.parametrize("kind", EXCHANGE_TYPES)
def test_the_four_exchange_types_are_accepted(kind):
    assert check_exchange_type(kind) == kind


@pytest.mark.parametrize("kind", ["", "Topic", "x-delayed-message", None, "match"])
def test_other_exchange_types_are_refused(kind):
    with pytest.raises(InvalidInput, match="exchange type must be one of direct, fanout, topic, headers"):
        check_exchange_type(kind)


def test_destination_type_is_queue_or_exchange():
    assert check_destination_type("queue") == "queue"
    assert check_destination_type("exchange") == "exchange"
    with pytest.raises(InvalidInput, match="destination type"):
        check_destination_type("topic")


# --------------------------------------------------------------------------- tables
def test_table_accepts_what_pika_can_encode():
    table = {"s": "x", "i": -5, "big": 2**40, "b": True, "n": None, "l": [1, "a", [False]], "t": {"k": "v"}}
    assert check_table(table) == table


def test_none_is_the_empty_table():
    assert check_table(None) == {}


def test_table_refuses_floats_because_pika_cannot_encode_them():
    with pytest.raises(InvalidInput, match=r"arguments\['rate'\]: numbers with a fraction"):
        check_table({"rate": 1.5})


def test_table_refuses_integers_beyond_64_bits():
    with pytest.raises(InvalidInput, match="64-bit"):
        check_table({"n": 2**63})


def test_table_refuses_a_key_over_255_bytes():
    with pytest.raises(InvalidInput, match="255"):
        check_table({"k" * 256: 1})


def test_table_refuses_empty_keys_and_non_objects():
    with pytest.raises(InvalidInput, match="must not be empty"):
        check_table({"": 1})
    with pytest.raises(InvalidInput, match="must be a JSON object, not a list"):
        check_table([1, 2])


def test_table_refuses_nesting_without_end():
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(InvalidInput, match="nested more than"):
        check_table(deep)


def test_headers_are_a_table():
    assert check_headers({"format": "pdf", "x-match": "any"}) == {"format": "pdf", "x-match": "any"}
    with pytest.raises(InvalidInput, match=r"headers\['v'\]"):
        check_headers({"v": 0.5})


# --------------------------------------------------------------------------- queue arguments
def test_queue_arguments_well_known_values_pass():
    args = {
        "x-message-ttl": 60000,
        "x-max-length": 10,
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "dead",
        "x-queue-type": "classic",
        "x-custom": "kept",
    }
    assert check_queue_arguments(args) == args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"x-message-ttl": -1}, "x-message-ttl must be between 0 and 4294967295, not -1"),
        ({"x-message-ttl": 2**32}, "x-message-ttl must be between"),
        ({"x-message-ttl": "60000"}, "x-message-ttl must be an integer, not a string"),
        ({"x-message-ttl": True}, "x-message-ttl must be an integer, not a boolean"),
        ({"x-max-length": -3}, "x-max-length must be between 0"),
        ({"x-max-length": "ten"}, "x-max-length must be an integer"),
        ({"x-expires": 0}, "x-expires must be between 1"),
        ({"x-max-priority": 256}, "x-max-priority must be between 0 and 255"),
        ({"x-dead-letter-exchange": 5}, "x-dead-letter-exchange must be a string"),
        ({"x-dead-letter-exchange": "d" * 256}, "x-dead-letter-exchange is 256 bytes"),
        ({"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "k" * 300}, "x-dead-letter-routing-key is"),
        ({"x-dead-letter-routing-key": "dead"}, "x-dead-letter-routing-key needs x-dead-letter-exchange"),
        ({"x-queue-type": "lazy"}, "x-queue-type must be one of classic, quorum, stream, not 'lazy'"),
        ({"x-overflow": "drop-tail"}, "x-overflow must be one of"),
    ],
)
def test_queue_arguments_with_wrong_values_are_refused(args, message):
    with pytest.raises(InvalidInput) as caught:
        check_queue_arguments(args)
    assert message in caught.value.message


def test_dead_letter_exchange_may_be_the_default_exchange():
    assert check_queue_arguments({"x-dead-letter-exchange": ""}) == {"x-dead-letter-exchange": ""}


@pytest.mark.parametrize("queue_type", ["classic", "quorum", "stream"])
def test_each_queue_type_is_accepted(queue_type):
    assert check_queue_arguments({"x-queue-type": queue_type})["x-queue-type"] == queue_type


# --------------------------------------------------------------------------- exchange arguments
def test_alternate_exchange_must_name_an_exchange():
    assert check_exchange_arguments({"alternate-exchange": "ae"}) == {"alternate-exchange": "ae"}
    with pytest.raises(InvalidInput, match="alternate-exchange must not be empty"):
        check_exchange_arguments({"alternate-exchange": ""})
    with pytest.raises(InvalidInput, match="alternate-exchange must be a string"):
        check_exchange_arguments({"alternate-exchange": 3})


def test_invalid_input_is_a_lab_error_with_the_invalid_code():
    with pytest.raises(InvalidInput) as caught:
        check_name("", "queue name")
    assert caught.value.code == "INVALID"
    assert caught.value.to_dict() == {"code": "INVALID", "message": "queue name must not be empty"}


# --------------------------------------------------------------------------- control characters (issue 15.1)
CHECKS = [
    lambda v: check_name(v, "queue name"),
    lambda v: check_routing_key(v, "routing key"),
    lambda v: check_table({v: 1}, "headers"),
    lambda v: check_queue_arguments({"x-dead-letter-exchange": v}),
    lambda v: check_exchange_arguments({"alternate-exchange": v}),
]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("bad", ["a\nb", "q\r", "\x00", "tab\there", "del\x7f", "c1\x85"])
def test_every_name_and_key_refuses_control_characters(check, bad):
    with pytest.raises(InvalidInput, match=r"control character \(U\+00[0-9A-F]{2} at position \d+\)"):
        check(bad)


def test_the_message_names_the_character_and_where_it_is():
    with pytest.raises(InvalidInput) as info:
        check_name("a\nb", "queue name")
    assert info.value.message.startswith("queue name holds a control character (U+000A at position 1)")
    assert "strips CR and LF" in info.value.message


@given(
    st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), max_size=40),
    st.characters(categories=("Cc",)),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40),
)
def test_any_text_with_a_control_character_is_refused_as_name_and_key(before, control, after):
    text = before + control + after
    assert control_character(text) == (len(before), f"U+{ord(control):04X}")
    for check in CHECKS[:3]:
        with pytest.raises(InvalidInput, match="control character"):
            check(text)


def test_printable_unicode_is_not_a_control_character():
    assert control_character("ünïcødé 兔 #.* a/b\u00a0") is None


# --------------------------------------------------------------------------- table sizes (issue 15.4)
def test_table_size_is_what_pika_encodes():
    import pika.data

    table = {"a": "x" * 10, "n": 5, "nested": {"list": [1, "two", None, True]}}
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    assert table_encoded_size(table) == len(b"".join(pieces))


def test_a_table_over_the_frame_is_refused_with_the_limit():
    big = {"blob": "x" * 140_000}
    with pytest.raises(InvalidInput) as info:
        check_table(big, "binding arguments", frame_max=131072)
    message = info.value.message
    assert f"binding arguments take {table_encoded_size(big)} bytes encoded" in message
    assert f"at most {table_limit(131072)} bytes fit" in message
    assert "frame_max is 131072" in message


def test_a_table_just_at_the_limit_fits():
    limit = table_limit(131072)
    overhead = table_encoded_size({"blob": ""})
    check_table_size({"blob": "x" * (limit - overhead)}, "headers", 131072)
    with pytest.raises(InvalidInput):
        check_table_size({"blob": "x" * (limit - overhead + 1)}, "headers", 131072)


def test_every_table_check_takes_the_frame_size():
    big = {"blob": "x" * 5000}
    for check in (check_queue_arguments, check_exchange_arguments, check_headers):
        assert check(big) == big  # no frame given: no size check
        with pytest.raises(InvalidInput, match="bytes encoded"):
            check(big, frame_max=8192)


@given(st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=5), st.text(max_size=3000), max_size=4))
def test_a_table_is_refused_exactly_when_its_encoding_is_over_the_limit(table):
    fits = table_encoded_size(table) <= table_limit(8192)
    if fits:
        assert check_table(table, frame_max=8192) == table
    else:
        with pytest.raises(InvalidInput):
            check_table(table, frame_max=8192)


@pytest.mark.parametrize("value", [2**64, 1.5, 1e308, -(2**63) - 1])
def test_tables_refuse_numbers_pika_cannot_encode(value):
    with pytest.raises(InvalidInput):
        check_table({"x-arg": value}, "tap arguments")
