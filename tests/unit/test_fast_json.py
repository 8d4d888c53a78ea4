"""The Socket.IO packets' JSON codec: orjson, with the standard library where orjson refuses a value."""

import json

from hypothesis import given
from hypothesis import strategies as st

from web.live import FastJSON, TextOnlyPacket

scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30)


@given(values)
def test_encodes_what_the_standard_library_encodes(value):
    text = FastJSON.dumps(value, separators=(",", ":"))
    assert isinstance(text, str)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert FastJSON.loads(text) == json.loads(text)


def test_integers_beyond_64_bits_fall_back_to_the_standard_library():
    value = {"big": 2**70, "neg": -(2**64)}
    assert FastJSON.dumps(value, separators=(",", ":")) == '{"big":1180591620717411303424,"neg":-18446744073709551616}'


def test_infinities_and_nan_become_null_which_a_browser_can_parse():
    # The standard library would write Infinity / NaN, which JSON.parse in the page rejects.
    assert FastJSON.dumps([float("inf"), float("-inf"), float("nan")]) == "[null,null,null]"


def test_non_text_keys_become_text_like_the_standard_library():
    assert json.loads(FastJSON.dumps({1: "a", None: "b"})) == json.loads(json.dumps({1: "a", None: "b"}))


def test_socketio_packets_use_it():
    packet = TextOnlyPacket(data=["delivery", {"body": "<img src=x onerror=alert(1)>", "n": 1}])
    assert packet.encode() == '2["delivery",{"body":"<img src=x onerror=alert(1)>","n":1}]'
    assert TextOnlyPacket.json is FastJSON
