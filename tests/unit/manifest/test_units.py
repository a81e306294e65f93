"""Durations in Compose's (Go's) syntax, kept to the millisecond; byte sizes in Docker's binary units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.manifest import ManifestError
from node.manifest.units import format_bytes, format_duration, parse_bytes, parse_duration_ms, parse_duration_s

DURATIONS = [
    ("0", 0), ("0s", 0), ("2s", 2000), ("500ms", 500), ("1m30s", 90_000), ("1h", 3_600_000),
    ("1h2m3s", 3_723_000), ("1.5s", 1500), (".5s", 500), ("1.5m", 90_000), ("10us", 0), ("600us", 1),
    ("1500us", 2), ("2000000ns", 2), ("1µs", 0), ("1h0m0.001s", 3_600_001), ("24h", 86_400_000),
]


@pytest.mark.parametrize(("text", "ms"), DURATIONS)
def test_duration_parses_to_whole_milliseconds(text: object, ms: int) -> None:
    assert parse_duration_ms(text, "f") == ms
    assert parse_duration_s(text, "f") == ms / 1000


BAD_DURATIONS = [
    (0, "0 is a number, and Compose's durations are strings; write it as '0s'"), (0.0, "write it as '0s'"),
    (5, "5 has no unit; write it as '5s'"), (1.5, "1.5 has no unit; write it as '1.5s'"),
    ("5", "write it as '5s'"), ("5 s", "is not a duration"), ("-1s", "is not a duration"), ("1d", "is not a duration"),
    ("s", "is not a duration"), ("1.2.3s", "is not a duration"), ("", "is not a duration"), (True, "is not a duration"),
    (None, "is not a duration"), ([1], "is not a duration"), ("25h", "out of range; allowed 0s to 24h0m0s"),
    ("9" * 70 + "h", "is not a duration"),
]


@pytest.mark.parametrize(("value", "fragment"), BAD_DURATIONS)
def test_bad_duration_names_the_field_and_the_fix(value: object, fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_duration_ms(value, "services.web.healthcheck.interval")
    assert caught.value.field == "services.web.healthcheck.interval"
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("ms", "text"), [(0, "0s"), (1, "1ms"), (500, "500ms"), (1000, "1s"), (1500, "1.5s"),
                                          (90_000, "1m30s"), (3_600_000, "1h0m0s"), (3_723_050, "1h2m3.05s")])
def test_duration_prints_in_go_style(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@given(st.integers(0, 86_400_000))
def test_printed_duration_reads_back_the_same(ms: int) -> None:
    assert parse_duration_ms(format_duration(ms), "f") == ms


@pytest.mark.parametrize(("value", "size"), [
    ("64M", 64 * 2**20), ("64m", 64 * 2**20), ("64mb", 64 * 2**20), ("64MiB", 64 * 2**20), ("1g", 2**30),
    ("1.5g", 3 * 2**29), ("512k", 512 * 1024), ("512 kb", 512 * 1024), ("100b", 100), ("100", 100), ("1t", 2**40),
])
def test_byte_size_uses_binary_multiples(value: object, size: int) -> None:
    assert parse_bytes(value, "f", min_bytes=0, max_bytes=2**50) == size


@pytest.mark.parametrize("value", ["64Q", "-1m", "m", "", True, 1.5, None, "1,5g"])
def test_bad_byte_size_is_refused(value: object) -> None:
    with pytest.raises(ManifestError, match=r"^f: .*not a byte size"):
        parse_bytes(value, "f", min_bytes=0, max_bytes=2**50)


@pytest.mark.parametrize(("value", "fix"), [
    (67108864, "'64M' or '67108864'"), (1536, "'1536'"), (2048, "'2K' or '2048'"), (0, "'64M' or '67108864'"),
    (-1, "'64M' or '67108864'"), (2**70, "'64M' or '67108864'"),
])
def test_byte_size_as_a_number_is_refused_with_the_string_to_write(value: int, fix: str) -> None:
    """Compose's schema types sizes as strings; the fix names the value's own spellings."""
    with pytest.raises(ManifestError) as caught:
        parse_bytes(value, "f", min_bytes=0, max_bytes=2**50)
    assert str(caught.value).endswith(f"is a number, and Compose's byte sizes are strings; write it as a string, "
                                      f"e.g. {fix}")


@given(st.integers(0, 2**44))
def test_printed_byte_size_reads_back_the_same(size: int) -> None:
    assert parse_bytes(format_bytes(size), "f", min_bytes=0, max_bytes=2**44) == size
