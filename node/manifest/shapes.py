"""What Compose allows as the value of each key Shoal ignores: a small declarative shape per key (keys.py).

Shoal reads nothing from an ignored key, yet a manifest it accepts must stay a Compose file, so the value is
checked as far as Compose constrains it: its schema (tests/unit/manifest/data/compose-spec.json) and, where
Compose's loader (compose-go) is stricter, the loader: a boolean written as a string must be a word it reads as
one ('true', 'yes', 'off'...), a duration must parse. fields.check_shape applies a shape; a wrong value is an
error naming the field at fault, the value and what Compose allows there.

Scalar  one value passing `test`.
ListOf  a list of `item`; if `unique`, each string in it once (the schema's uniqueItems).
MapOf   a mapping, any key passing `key`, each value of shape `value`.
Obj     a mapping of the named `fields` (and x-* extensions), the `required` ones present.
Either  the first choice that fits the value: a list for ListOf, a mapping for MapOf/Obj, a passing Scalar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from node.manifest.errors import ManifestError
from node.manifest.units import parse_duration_ms


@dataclass(frozen=True, slots=True)
class Scalar:
    what: str
    test: Callable[[object], bool]


@dataclass(frozen=True, slots=True)
class ListOf:
    what: str
    item: Shape
    unique: bool = True


@dataclass(frozen=True, slots=True)
class MapOf:
    what: str
    value: Shape
    key: Scalar


@dataclass(frozen=True, slots=True)
class Obj:
    what: str
    fields: Mapping[str, Shape]
    required: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Either:
    what: str
    choices: tuple[Shape, ...]


Shape: TypeAlias = Scalar | ListOf | MapOf | Obj | Either


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    return _is_number(value) and (not isinstance(value, float) or math.isfinite(value))


def _is_duration(value: object) -> bool:
    try:  # as long as Go's time.Duration holds (Shoal's own 24h cap is for the timers it runs)
        parse_duration_ms(value, "", max_ms=(2**63 - 1) // 10**6)
    except ManifestError:
        return False
    return True


def matching(what: str, pattern: str) -> Scalar:
    regex = re.compile(pattern)
    return Scalar(what, lambda value: isinstance(value, str) and regex.fullmatch(value) is not None)


def one_of(*choices: str) -> Scalar:
    return Scalar(f"one of: {', '.join(choices)}", lambda value: isinstance(value, str) and value in choices)


STRING = Scalar("a string", lambda value: isinstance(value, str))
NUMBER = Scalar("a number", _is_finite)
STRICT_BOOLEAN = Scalar("true or false", lambda value: isinstance(value, bool))
# the schema's ["boolean", "string"]: compose-go reads the string as a boolean and refuses any other word
BOOLEAN = Scalar("true or false", lambda value: isinstance(value, bool) or (
    isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "y", "n")))
DURATION = Scalar("a duration string, e.g. '10s', '1m30s' (units: ns, us, ms, s, m, h)", _is_duration)
# Docker's rule; the schema has the same pattern, unanchored
CONTAINER_NAME = matching("a container name (a letter or digit, then one or more letters, digits, '_', '.', '-')",
                          r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
SERVICE_NAME = matching("a service name (letters, digits, '.', '_', '-')", r"[a-zA-Z0-9._-]+")
ANY_KEY = Scalar("a non-empty key", lambda key: isinstance(key, str) and key.strip("\n") != "")  # the schema's ".+"

NULL = Scalar("null", lambda value: value is None)
VALUE = Scalar("a string, number, boolean or null", lambda value: value is None or isinstance(value, str | int | float))
OPTION = Scalar("a string, number or null", lambda value: value is None or isinstance(value, str) or _is_number(value))

# The schema's shared definitions
LIST_OF_STRINGS = ListOf("a list of strings, each once", STRING)
LIST_OR_DICT = Either("a mapping {KEY: value} or a list of strings ['KEY=value'], each once", (
    MapOf("a mapping {KEY: value}", VALUE, ANY_KEY), LIST_OF_STRINGS))
STRING_OR_LIST = Either("a string or a list of strings, each once", (STRING, LIST_OF_STRINGS))
COMMAND = Either("a string, a list of strings or null", (
    NULL, STRING, ListOf("a list of strings", STRING, unique=False)))

# The objects under depends_on, logging, develop
DEPENDENCY = Obj("a mapping {condition, required, restart}", {
    "condition": one_of("service_started", "service_healthy", "service_completed_successfully"),
    "required": STRICT_BOOLEAN, "restart": BOOLEAN}, frozenset({"condition"}))
DEPENDS_ON = Either("a list of service names, or a mapping {SERVICE: {condition: ...}}", (
    LIST_OF_STRINGS, MapOf("a mapping {SERVICE: {condition: ...}}", DEPENDENCY, SERVICE_NAME)))
LOGGING = Obj("a mapping {driver, options}", {
    "driver": STRING, "options": MapOf("a mapping {OPTION: value}", OPTION, ANY_KEY)})
HOOK = Obj("a hook {command, user, privileged, working_dir, environment}", {
    "command": COMMAND, "user": STRING, "privileged": BOOLEAN, "working_dir": STRING, "environment": LIST_OR_DICT},
    frozenset({"command"}))
WATCH_RULE = Obj("a watch rule {path, action, ...}", {
    "path": STRING, "action": one_of("rebuild", "sync", "restart", "sync+restart", "sync+exec"),
    "ignore": STRING_OR_LIST, "include": STRING_OR_LIST, "target": STRING, "exec": HOOK,
    "initial_sync": STRICT_BOOLEAN}, frozenset({"path", "action"}))
DEVELOP = Obj("a mapping {watch: [...]}", {"watch": ListOf("a list of watch rules", WATCH_RULE, unique=False)})
