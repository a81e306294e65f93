"""Compose's units: durations ('1m30s', '500ms') and byte sizes ('64M', '1.5g'), parsed and printed back.

Durations follow Go's time.ParseDuration (what Compose uses): a sequence of decimal numbers each with a unit
ns, us (µs), ms, s, m, h; '0' alone needs no unit. They are kept to the millisecond (Docker's own smallest
healthcheck interval is 1 ms) and stored as float seconds (fields end in `_s`); seconds == ms / 1000 always,
so printing and parsing again gives the same float. A unitless number other than '0' is an error with the fix
('5' -> '5s'): Compose requires a unit, and guessing seconds vs nanoseconds would be wrong half the time. A YAML
number is an error even when it is 0 (the fix: '0s'): Compose's schema types durations as strings.
Byte sizes follow Docker's RAMInBytes: binary multiples (k = 1024), an optional 'b'/'ib'; a string of digits is
bytes. They are strings: a YAML number is an error with the fix (67108864 -> '64M' or '67108864'), as in
Compose's schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from node.manifest.errors import ManifestError, child, show
from node.manifest.limits import MAX_DURATION_MS

_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)")
_BYTES = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_MULTIPLE = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
DURATION_HINT = "a duration with a unit, e.g. '500ms', '5s', '1m30s' (units: ns, us, ms, s, m, h)"


def parse_duration_ms(value: object, field: str, *, min_ms: int = 0, max_ms: int = MAX_DURATION_MS) -> int:
    """A Compose duration -> whole milliseconds, rounded to the nearest; ManifestError naming `field`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == 0:  # '0' needs no unit, but a YAML number is not a string: Compose's schema refuses it
            raise ManifestError(field, value, f"{show(value)} is a number, and Compose's durations are strings; "
                                              "write it as '0s'")
        raise ManifestError(field, value, f"{show(value)} has no unit; write it as '{show(value)}s' "
                                          f"(or another unit: ns, us, ms, s, m, h)")
    if not isinstance(value, str) or len(value) > 64:
        raise ManifestError(field, value, f"{show(value)} is not {DURATION_HINT}")
    if value == "0":
        ms = 0
    else:
        ns, pos = 0, 0
        while pos < len(value) and (match := _PART.match(value, pos)) and (match.group(1) or match.group(2)):
            whole, fraction, unit = match.groups()
            fraction = fraction or ""
            ns += int(whole or "0") * _NS[unit] + int(fraction or "0") * _NS[unit] // 10 ** len(fraction)
            pos = match.end()
        if pos != len(value) or pos == 0:
            hint = f"; write it as '{value}s'" if re.fullmatch(r"[0-9.]+", value) else ""
            raise ManifestError(field, value, f"{show(value)} is not {DURATION_HINT}{hint}")
        ms = (ns + 500_000) // 10**6
    if not min_ms <= ms <= max_ms:
        raise ManifestError(field, value, f"{show(value)} is out of range; allowed "
                                          f"{format_duration(min_ms)} to {format_duration(max_ms)}")
    return ms


def parse_duration_s(value: object, field: str, *, min_ms: int = 0, max_ms: int = MAX_DURATION_MS) -> float:
    """As parse_duration_ms, in float seconds (== ms / 1000 exactly as format_duration reads it back)."""
    return parse_duration_ms(value, field, min_ms=min_ms, max_ms=max_ms) / 1000


def read_duration_s(keys: Mapping[str, object], key: str, field: str, default_s: float, *, min_ms: int = 0) -> float:
    """keys[key] as a duration in seconds (its field: `field`.`key`), or default_s if the key is absent."""
    return parse_duration_s(keys[key], child(field, key), min_ms=min_ms) if key in keys else default_s


def format_duration(total: int) -> str:
    """Whole milliseconds -> Go's style, which parse_duration_ms reads back: '0s', '500ms', '1.5s', '1m30s'."""
    if total < 1000:
        return f"{total}ms" if total else "0s"
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    seconds = f"{whole}.{millis:03d}".rstrip("0") if millis else str(whole)
    return (f"{hours}h{minutes}m" if hours else f"{minutes}m" if minutes else "") + f"{seconds}s"


def format_seconds(seconds: float) -> str:
    """A duration stored in float seconds (a `_s` field) -> its Compose text."""
    return format_duration(round(seconds * 1000))


def parse_bytes(value: object, field: str, *, min_bytes: int, max_bytes: int) -> int:
    """'64M', '1.5g', '512kb', '1048576' -> bytes (binary multiples, as Docker); ManifestError naming `field`."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ManifestError(field, value, f"{show(value)} is a number, and Compose's byte sizes are strings; "
                                          f"write it as a string, e.g. {_as_size_text(value)}")
    if isinstance(value, str) and len(value) <= 32 and (match := _BYTES.fullmatch(value.strip())):
        size = int(float(match.group(1)) * _MULTIPLE[match.group(2).lower()])
    else:
        raise ManifestError(field, value, f"{show(value)} is not a byte size, e.g. '64M', '512k', '1.5g' "
                                          "(units b, k, m, g, t; binary multiples: 1k = 1024)")
    if not min_bytes <= size <= max_bytes:
        raise ManifestError(field, value, f"{show(value)} is out of range; allowed {format_bytes(min_bytes)} "
                                          f"to {format_bytes(max_bytes)}")
    return size


def _as_size_text(size: int) -> str:
    """The fix for a byte count written as a number: 67108864 -> "'64M' or '67108864'", 100 -> "'100'"."""
    if not 0 < size <= 2**64:
        return "'64M' or '67108864'"
    short = format_bytes(size)
    return f"'{size}'" if short == str(size) else f"'{short}' or '{size}'"


def format_bytes(size: int) -> str:
    """Bytes -> the largest exact unit: 67108864 -> '64M', 1536 -> '1536', as parse_bytes reads it back."""
    for unit in ("T", "G", "M", "K"):
        if size and size % _MULTIPLE[unit.lower()] == 0:
            return f"{size // _MULTIPLE[unit.lower()]}{unit}"
    return str(size)
