"""fib by fast doubling, exact decimal output, and the request parsing the fib server relies on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rabbit.fib import (
    DEFAULT_MAX_N,
    MAX_BODY_BYTES,
    FibRequestError,
    answer,
    check_n,
    fib,
    parse_request,
    to_decimal,
)


def fib_by_iteration(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_first_values_match_the_definition():
    assert [fib(n) for n in range(12)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]


def test_fib_30_is_the_tutorials_answer():
    assert fib(30) == 832040


@given(st.integers(min_value=0, max_value=3000))
def test_fast_doubling_equals_plain_iteration(n):
    assert fib(n) == fib_by_iteration(n)


@given(st.integers(min_value=2, max_value=5000))
def test_recurrence_holds(n):
    assert fib(n) == fib(n - 1) + fib(n - 2)


def test_fib_of_the_default_bound_is_exact_and_has_20899_digits():
    value = fib(DEFAULT_MAX_N)
    assert value == fib(DEFAULT_MAX_N - 1) + fib(DEFAULT_MAX_N - 2)
    text = to_decimal(value)
    assert len(text) == 20899
    assert text.startswith("2597406934722172416615503402127591541488048538651769658472477070395253454351127368626555")
    a, b = 0, 1  # the last 12 digits, by plain iteration modulo 10**12
    for _ in range(DEFAULT_MAX_N):
        a, b = b, (a + b) % 10**12
    assert text.endswith(str(a).rjust(12, "0"))


def test_fib_refuses_negative_and_non_integers():
    with pytest.raises(ValueError):
        fib(-1)
    with pytest.raises(TypeError):
        fib(3.0)
    with pytest.raises(TypeError):
        fib(True)


@given(st.integers(min_value=-(10**9000), max_value=10**9000))
def test_to_decimal_round_trips_past_pythons_digit_limit(value):
    text = to_decimal(value)
    assert text == ("-" if value < 0 else "") + text.lstrip("-")
    # rebuild without int(str) (limited to 4300 digits): via chunks of 1000 digits
    digits = text.lstrip("-")
    rebuilt = 0
    for start in range(0, len(digits), 1000):
        chunk = digits[start : start + 1000]
        rebuilt = rebuilt * 10 ** len(chunk) + int(chunk)
    assert (-rebuilt if value < 0 else rebuilt) == value
    assert digits == "0" or not digits.startswith("0")


@pytest.mark.parametrize(
    ("body", "n"),
    [(b"30", 30), (b"0", 0), (b" 7\n", 7), (b"+12", 12), (b"000", 0), (str(DEFAULT_MAX_N).encode(), DEFAULT_MAX_N)],
)
def test_parse_request_accepts_decimal_text(body, n):
    assert parse_request(body) == n


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty request"),
        (b"   \n", "empty request"),
        (b"abc", "not an integer: 'abc'"),
        (b"3.5", "not an integer: '3.5'"),
        (b"1_000", "not an integer"),
        (b"0x10", "not an integer"),
        (b"-5", "n must be >= 0 (got -5)"),
        (b"100001", "n must be <= 100000 (got 100001)"),
        (b"\xff\xfe\x00garbage", "not text"),
        ("٣".encode(), "not text"),
        (b"\x00\x01", "not an integer: '??'"),
        (b"9" * (MAX_BODY_BYTES + 1), f"too large: {MAX_BODY_BYTES + 1} bytes"),
        (b"1" * 10_000_000, "too large: 10000000 bytes"),
    ],
)
def test_parse_request_refuses_bad_input_with_a_clear_reason(body, reason):
    with pytest.raises(FibRequestError) as caught:
        parse_request(body)
    assert reason in str(caught.value)


def test_the_bound_is_configurable():
    assert parse_request(b"50", max_n=50) == 50
    with pytest.raises(FibRequestError, match="<= 49"):
        parse_request(b"50", max_n=49)


@given(st.binary(max_size=200))
def test_parse_request_never_raises_anything_but_a_refusal(body):
    try:
        n = parse_request(body)
    except FibRequestError as error:
        assert str(error)
    else:
        assert 0 <= n <= DEFAULT_MAX_N


def test_check_n_names_the_wrong_type():
    assert check_n(5) == 5
    with pytest.raises(FibRequestError, match="integer, not str"):
        check_n("5")
    with pytest.raises(FibRequestError, match="integer, not bool"):
        check_n(True)


def test_answer_gives_n_and_the_decimal_reply():
    assert answer(b"30") == (30, "832040")
    n, text = answer(b"100000")
    assert n == 100000 and len(text) == 20899
