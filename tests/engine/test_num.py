"""engine.num: exact decimal strings <-> integer units of 1e-8, never through float."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.num import DIGITS, SCALE, DecimalError, parse, parse_price, to_str


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("61837.63000000", 6_183_763_000_000),  # what Binance sends: the 8-digit fast path
        ("0.00000001", 1),
        ("0.00000000", 0),
        ("0", 0),
        ("1", SCALE),
        ("1.5", 150_000_000),
        ("0.1", 10_000_000),
        ("0.12345678", 12_345_678),
        ("99999999999.99999999", 9_999_999_999_999_999_999),
        ("12345678901234567890.12345678", 1_234_567_890_123_456_789_012_345_678),  # beyond float precision
        ("007.50000000", 750_000_000),
        ("1.0000000000", SCALE),  # more than 8 decimals are fine when the extra ones are zeros
        ("0.123456780", 12_345_678),
        ("61837.630000000000", 6_183_763_000_000),
    ],
)
def test_parse_is_exact(text: str, units: int) -> None:
    assert parse(text) == units
    assert parse_price(text) == units


def test_parse_does_not_go_through_float() -> None:
    # 0.1 + 0.2 != 0.3 in float; in units it is exact.
    assert parse("0.1") + parse("0.2") == parse("0.3")
    # 2**53 + 1 is not representable as a float.
    assert parse("9007199254740993") == 9_007_199_254_740_993 * SCALE


@pytest.mark.parametrize(
    "text",
    [
        "-1",
        "+1",
        "-1.00000000",  # fast path (8 decimals) with a sign
        "+1.00000000",
        "-0.00000000",
        "1e5",
        "1E5",
        "1e1.00000000",
        "1.5e-3",
        "1_000",
        "1_0.00000000",
        "1.000_00000",
        " 1",
        "1 ",
        " 1.00000000",
        "1.00000000 ",
        "1. 5",
        "",
        ".",
        "..",
        "1.2.3",
        "1..2345678",
        "0.123456789",  # a ninth non-zero decimal
        "1.000000001",
        "0.000000000001",
        "abc",
        "inf",
        "nan",
        "NaN",
        "0x10",
        "1,5",
        "١",  # ARABIC-INDIC DIGIT ONE: str.isdigit() says yes
        "²",  # SUPERSCRIPT TWO: str.isdigit() says yes
        "1²",
        "١.00000000",
        "12345.6789012²",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DecimalError):
        parse(text)
    with pytest.raises(DecimalError):
        parse_price(text)


@pytest.mark.parametrize("value", [1, 1.5, None, b"1.00000000", Decimal("1"), ["1"], 0])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(DecimalError, match="not a string"):
        parse(value)  # type: ignore[arg-type]


def test_decimal_error_is_a_value_error() -> None:
    assert issubclass(DecimalError, ValueError)


def test_parse_price_does_not_cache_failures() -> None:
    for _ in range(2):
        with pytest.raises(DecimalError):
            parse_price("12.3x")
    assert parse_price("12.30000000") == parse_price("12.30000000") == 1_230_000_000


@pytest.mark.parametrize(
    ("units", "stripped", "full"),
    [
        (0, "0", "0.00000000"),
        (1, "0.00000001", "0.00000001"),
        (SCALE, "1", "1.00000000"),
        (150_000_000, "1.5", "1.50000000"),
        (6_183_763_000_000, "61837.63", "61837.63000000"),
        (10 * SCALE, "10", "10.00000000"),
        (1_234_567_890_123_456_789_012_345_678, "12345678901234567890.12345678", "12345678901234567890.12345678"),
    ],
)
def test_to_str(units: int, stripped: str, full: str) -> None:
    assert to_str(units) == stripped
    assert to_str(units, strip=False) == full


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**30))
def test_round_trip_from_units(units: int) -> None:
    assert parse(to_str(units)) == units
    assert parse(to_str(units, strip=False)) == units
    with localcontext(prec=60):
        assert Decimal(to_str(units)) == Decimal(units).scaleb(-DIGITS)
    full = to_str(units, strip=False)
    assert len(full.partition(".")[2]) == DIGITS


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=0, max_value=10**12, places=DIGITS, allow_nan=False, allow_infinity=False))
def test_round_trip_from_decimal_strings(d: Decimal) -> None:
    text = format(d, "f")
    units = parse(text)
    assert units == int(d.scaleb(DIGITS))
    assert Decimal(to_str(units)) == d
