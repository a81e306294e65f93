"""Typed readers for one field of untrusted data: each returns a checked value or raises ManifestError.

The validators are built from these, so every error has the same shape: the field's dotted path, the value,
what is allowed. `read_object` applies a KeyTable (keys.py): it returns the supported keys, records a warning
for each ignored one (or, in strict mode, `notes=None`, refuses it) once `check_shape` finds its value of the
shape Compose allows (shapes.py), and refuses unsupported and unknown keys, and a null value (`key:` with
nothing after it) wherever Compose refuses one, so what Shoal accepts stays Compose.
bool is never accepted where a number is meant (Python's bool is an int; Compose's is not).
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from collections.abc import Collection, Mapping

from node.manifest.errors import ManifestError, ManifestWarning, child, show
from node.manifest.keys import KeyTable
from node.manifest.limits import MAX_ARGS, MAX_STRING_CHARS
from node.manifest.shapes import Either, ListOf, MapOf, Obj, Scalar, Shape

Notes = list[ManifestWarning] | None  # where warnings go; None = strict (a payload): a warning is an error


def read_object(value: object, field: str, table: KeyTable, notes: Notes, *,
                null_ok: bool = False) -> dict[str, object]:
    """A Compose object (mapping) checked against `table`; returns {supported key: value}.

    null_ok: the object itself may be null (absent, or null where Compose allows it), read as {}. A key's null
    value is the key left out where Compose allows it (table.nullable), and an error anywhere else."""
    if value is None and null_ok:
        return {}
    out: dict[str, object] = {}
    for key, item in as_mapping(value, field).items():
        path = child(field, key)
        if item is None and key not in table.nullable and (key in table.supported or key in table.ignored):
            raise ManifestError(path, None, empty_value(required=key in table.required))
        if key in table.supported:
            if item is not None:  # a null Compose allows (table.nullable) is the key left out
                out[key] = item
        elif key.startswith("x-") and table.extensions:
            continue
        elif key in table.unsupported:
            raise ManifestError(path, item, table.unsupported[key])
        elif key in table.ignored:
            why, shape = table.ignored[key]
            if item is not None:  # a null Compose allows (table.nullable) is the key left out
                check_shape(item, path, shape, f" (Shoal ignores {key}: correct the value or remove the key)")
            if notes is None:
                raise ManifestError(path, item, f"{why}; a canonical service payload never has it")
            notes.append(ManifestWarning(path, why))
        else:
            raise ManifestError(path, item, unknown_key(key, table.supported, extensions=table.extensions))
    return out


def check_shape(value: object, field: str, shape: Shape, why: str) -> None:
    """Refuse `value` unless it has `shape` (shapes.py), with a ManifestError naming the innermost field at fault,
    the value and what Compose allows there, then `why` (the fix)."""
    def refuse(what: str, hint: str = "") -> ManifestError:
        return ManifestError(field, value, f"{show(value)} is not {what}, as Compose requires{hint}{why}")

    if isinstance(shape, Either):
        fits = [choice for choice in shape.choices if _fits(value, choice)]
        if not fits:
            raise refuse(shape.what)
        check_shape(value, field, fits[0], why)
    elif isinstance(shape, Scalar):
        if not shape.test(value):
            quote = isinstance(value, int | float) and not isinstance(value, bool) and shape.test(str(value))
            raise refuse(shape.what, f"; quote it: '{value}'" if quote else "")
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise refuse(shape.what)
        seen: set[str] = set()
        for i, item in enumerate(value):
            check_shape(item, child(field, i), shape.item, why)
            if shape.unique and isinstance(item, str):
                if item in seen:
                    raise ManifestError(child(field, i), item, f"{show(item)} is listed twice; Compose lists each "
                                                               f"item once{why}")
                seen.add(item)
    elif not isinstance(value, dict):
        raise refuse(shape.what)
    else:
        for key, item in as_mapping(value, field).items():
            path = child(field, key)
            if isinstance(shape, MapOf):
                if not shape.key.test(key):
                    raise ManifestError(path, key, f"key {show(key)} is not {shape.key.what}, as Compose "
                                                   f"requires{why}")
                check_shape(item, path, shape.value, why)
            elif key in shape.fields:
                check_shape(item, path, shape.fields[key], why)
            elif not key.startswith("x-"):
                raise ManifestError(path, item, unknown_key(key, shape.fields) + why)
        if isinstance(shape, Obj) and (missing := sorted(shape.required - value.keys())):
            raise ManifestError(child(field, missing[0]), None,
                                f"is required by Compose: {shape.fields[missing[0]].what}{why}")


def _fits(value: object, choice: Shape) -> bool:
    """Whether `choice` is the alternative of an Either meant for `value`: by its kind, or a Scalar it passes."""
    if isinstance(choice, ListOf):
        return isinstance(value, list)
    if isinstance(choice, MapOf | Obj):
        return isinstance(value, dict)
    return isinstance(choice, Scalar) and choice.test(value)


def empty_value(*, required: bool = False) -> str:
    """The problem with a null value (`key:` with nothing after it) where Compose's schema refuses one."""
    return "is empty (null), which Compose does not accept here; " + \
        ("give it a value (it is required)" if required else "give a value or remove the key")


def unknown_key(key: str, allowed: Collection[str], *, extensions: bool = True) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    listed = ", ".join(sorted(allowed)) + (" (and x-* extensions)" if extensions else "")
    return f"unknown key {show(key)}" + (f"; did you mean {close[0]!r}?" if close else ";") + f" allowed: {listed}"


def as_mapping(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ManifestError(field, value, f"{show(value)} is not a mapping (key: value)")
    for key in value:
        if not isinstance(key, str):
            raise ManifestError(field, key, f"key {show(key)} is not a string; quote it")
        if not is_text(key):  # it would end up in a field path, and in messages printed to terminals
            raise ManifestError(field, key, f"key {show(key)} is not valid Unicode text")
    return value


def as_list(value: object, field: str, *, max_items: int, min_items: int = 0) -> list[object]:
    if not isinstance(value, list):
        raise ManifestError(field, value, f"{show(value)} is not a list")
    if not min_items <= len(value) <= max_items:
        raise ManifestError(field, value, f"has {len(value)} items; allowed {min_items} to {max_items}")
    return value


def as_str(value: object, field: str, *, max_chars: int = MAX_STRING_CHARS, min_chars: int = 1,
           pattern: re.Pattern[str] | None = None, what: str = "a string") -> str:
    """A string of bounded length, without NUL (it cannot reach a process) or lone surrogates (not text; a JSON
    payload can carry them as escapes), optionally matching `pattern`."""
    if not isinstance(value, str):
        hint = f"; quote it: '{value}'" if isinstance(value, int | float) and not isinstance(value, bool) else ""
        raise ManifestError(field, value, f"{show(value)} is not {what}{hint}")
    if not min_chars <= len(value) <= max_chars:
        raise ManifestError(field, value, f"{show(value)} has {len(value)} characters; allowed {min_chars} to "
                                          f"{max_chars}")
    if "\0" in value or (pattern is not None and not pattern.fullmatch(value)):
        raise ManifestError(field, value, f"{show(value)} is not {what}")
    if not is_text(value):
        raise ManifestError(field, value, f"{show(value)} is not valid Unicode text")
    return value


def is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_int(value: object, field: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ManifestError(field, value, f"{show(value)} is not a whole number from {lo} to {hi}")
    return value


def as_number(value: object, field: str, lo: float, hi: float, *, above_lo: bool = False) -> float:
    """An int or float in [lo, hi] (or (lo, hi] with above_lo); NaN and infinities are refused."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and (lo < value if above_lo else lo <= value) and value <= hi
    if not ok:
        span = f"greater than {lo:g} and at most {hi:g}" if above_lo else f"from {lo:g} to {hi:g}"
        raise ManifestError(field, value, f"{show(value)} is not a number {span}")
    return float(value)  # type: ignore[arg-type]  # checked just above


def as_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(field, value, f"{show(value)} is not true or false")
    return value


def as_choice(value: object, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ManifestError(field, value, f"{show(value)} is not one of: {', '.join(choices)}")
    return value


def as_port(value: object, field: str) -> int:
    """A port number, 1..65535, as an int or a string of digits (Compose accepts both)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ManifestError(field, value, f"{show(value)} is not a port number from 1 to 65535")
    return value


def as_args(value: object, field: str, *, min_items: int = 0) -> tuple[str, ...]:
    """A command: a list of strings, or one string split as a POSIX shell would (quotes, no expansion)."""
    if isinstance(value, str):
        as_str(value, field, min_chars=0, max_chars=MAX_STRING_CHARS * 4)
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise ManifestError(field, value, f"{show(value)} cannot be split into arguments ({exc}); "
                                              "check its quotes, or write it as a list") from None
    items = as_list(value, field, max_items=MAX_ARGS, min_items=min_items)
    return tuple(as_str(item, child(field, i), min_chars=0) for i, item in enumerate(items))
