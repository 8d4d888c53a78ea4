"""The body preview is bounded in depth, size and time and never raises, whatever the bytes (pure)."""

from __future__ import annotations

import itertools
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from rabbit.properties import (
    PREVIEW_BYTES,
    PREVIEW_JSON_DEPTH,
    PREVIEW_PRETTY_CHARS,
    body_preview,
    json_depth,
)

NESTED = b"[" * 2000 + b"]" * 2000  # the body that killed every consumer on its queue (RecursionError)


def test_deeply_nested_json_is_shown_as_text_with_the_reason():
    preview = body_preview(NESTED, "application/json")
    assert preview["kind"] == "text"
    assert preview["json"] is None
    assert preview["text"] == NESTED.decode()
    assert str(PREVIEW_JSON_DEPTH) in preview["note"]


def test_json_at_the_depth_bound_is_still_pretty():
    body = ("[" * PREVIEW_JSON_DEPTH + "]" * PREVIEW_JSON_DEPTH).encode()
    assert body_preview(body)["kind"] == "json"
    deeper = ("[" * (PREVIEW_JSON_DEPTH + 1) + "]" * (PREVIEW_JSON_DEPTH + 1)).encode()
    assert body_preview(deeper)["kind"] == "text"


def test_json_that_prints_too_long_is_shown_as_text():
    # 60 levels deep, then ~2000 small numbers: indenting multiplies the size far past the bound.
    body = ("[" * 60 + ",".join(["1"] * 1900) + "]" * 60).encode()
    assert len(body) <= PREVIEW_BYTES
    preview = body_preview(body)
    assert preview["kind"] == "text" and preview["json"] is None


def test_brackets_inside_strings_do_not_count():
    assert json_depth('["[[[[", "]]"]') == 1
    assert json_depth(r'{"a": "\"[[[["}') == 1
    assert json_depth("[" * 10, stop_at=3) == 4


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab[]{}"\\ ', max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=30,
)


def actual_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((actual_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((actual_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_json_depth_agrees_with_the_parsed_structure(value):
    assert json_depth(json.dumps(value)) == actual_depth(value)


def depth_char_by_char(text: str, stop_at: int | None = None) -> int:
    """The reference for any text: drop the strings character by character, then the deepest running sum."""
    outside = []
    in_string = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = char == "\\", char != '"'
        elif char == '"':
            in_string = True
        elif char in "[]{}":
            outside.append(1 if char in "[{" else -1)
    deepest = max([0, *itertools.accumulate(outside)])
    return deepest if stop_at is None else min(deepest, stop_at + 1)


@settings(max_examples=500)
@given(st.text(alphabet='[]{}"\\ a\n', max_size=200), st.none() | st.integers(0, 10))
def test_json_depth_scans_any_text_like_a_character_by_character_scan(text, stop_at):
    assert json_depth(text, stop_at) == depth_char_by_char(text, stop_at)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=PREVIEW_BYTES + 64) | st.text(alphabet='[]{}",:1a\\ ', max_size=PREVIEW_BYTES).map(str.encode)
)
def test_any_body_gets_a_bounded_preview_quickly(body):
    started = time.perf_counter()
    preview = body_preview(body, "application/json")
    assert time.perf_counter() - started < 0.5
    assert preview["kind"] in ("json", "text", "binary")
    assert preview["size"] == len(body)
    assert len(preview["text"] or "") <= PREVIEW_BYTES
    assert len(preview["json"] or "") <= PREVIEW_PRETTY_CHARS
    assert len(preview["hex"] or "") <= 64 * 80
    short = body_preview(body, "application/json", limit=1024)  # a tap's preview
    assert short["kind"] in ("json", "text", "binary") and short["truncated"] == (len(body) > 1024)
    assert len(short["text"] or "") <= 1024 and len(short["hex"] or "") <= 64 * 80


def test_a_preview_that_fails_degrades_to_hex():
    class Odd(bytes):
        """Bytes whose decoding fails in a way the preview does not expect."""

        def __getitem__(self, item):  # type: ignore[override]
            raise ValueError("simulated")

    preview = body_preview(Odd(b"abc"))
    assert preview["kind"] == "binary" and "preview failed" in preview["note"]
