"""The settings a service and its canary share: image reference and environment (command is fields.as_args).

Kept apart from service.py so x-shoal's canary reads them exactly as the service does, without an import cycle.
"""

from __future__ import annotations

import re

from node.manifest.errors import ManifestError, child, show
from node.manifest.fields import as_list, as_mapping, as_str
from node.manifest.limits import MAX_ENV, MAX_ENV_KEY_CHARS, MAX_IMAGE_CHARS, MAX_STRING_CHARS

# Docker's reference grammar, simplified: [registry[:port]/]path[:tag][@digest]; path components lowercase.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
                    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def read_image(value: object, field: str) -> str:
    return as_str(value, field, max_chars=MAX_IMAGE_CHARS, pattern=_IMAGE,
                  what="an image reference [registry[:port]/]name[:tag][@digest] with a lowercase name, "
                       "e.g. 198.18.0.1:5000/shoal-demo:1")


def read_environment(value: object, field: str) -> tuple[tuple[str, str], ...]:
    """A mapping {KEY: value} or a list ["KEY=value"]; values are stringified as Compose does (true -> "true")."""
    pairs: dict[str, str] = {}
    if isinstance(value, list):
        for i, item in enumerate(as_list(value, field, max_items=MAX_ENV)):
            key, sep, text = as_str(item, child(field, i), what="KEY=value",
                                       max_chars=MAX_ENV_KEY_CHARS + 1 + MAX_STRING_CHARS) \
                .partition("=")
            if not sep:
                raise _no_value(child(field, i), item, key)
            if key in pairs:
                raise ManifestError(child(field, i), item, f"{show(key)} is set twice; keep one")
            pairs[key] = text
    else:
        mapping = as_mapping(value, field)
        if len(mapping) > MAX_ENV:
            raise ManifestError(field, None, f"has {len(mapping)} variables; allowed at most {MAX_ENV}")
        pairs = {key: _env_value(item, child(field, key), key) for key, item in mapping.items()}
    for key, text in pairs.items():
        as_str(key, child(field, key), max_chars=MAX_ENV_KEY_CHARS, pattern=_ENV_KEY,
               what="a variable name (letters, digits, '_', '.', '-'; not starting with a digit)")
        as_str(text, child(field, key), min_chars=0)
    return tuple(sorted(pairs.items()))


def _env_value(value: object, field: str, key: str) -> str:
    if value is None:
        raise _no_value(field, value, key)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return as_str(value, field, min_chars=0, what="a string, number or boolean")


def _no_value(field: str, value: object, key: str) -> ManifestError:
    return ManifestError(field, value, f"{show(key)} has no value; Compose would copy it from the shell that runs "
                                       f"it, and Shoal deploys from no shell: write {key}: \"\" for an empty value")
