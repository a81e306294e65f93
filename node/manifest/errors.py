"""What the manifest parser reports: one error type that names the field, and warnings for ignored keys.

A ManifestError's field is a dotted path into the document ("services.web.deploy.replicas", list items by
index: "services.web.ports.0"); "" is the document as a whole. Its message names the value, what is
allowed and, where there is one, the fix, so an operator can correct the file without reading the code.
`show` renders any value (however large, deep or cyclic) as a short preview for those messages.
"""

from __future__ import annotations

from dataclasses import dataclass

PREVIEW_CHARS = 60  # a value in a message is cut to this; the field path says where the rest is


class ManifestError(ValueError):
    """A manifest (or a service payload) that Shoal will not run; str() is the whole message."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        super().__init__(f"{field or 'manifest'}: {problem}")
        self.field = field
        self.value = value
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ManifestWarning:
    """A key Shoal accepts but ignores, because it has no meaning here (e.g. container_name)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def child(field: str, key: str | int) -> str:
    """The path of `key` inside `field`: child("services.web", "image") == "services.web.image"."""
    return f"{field}.{key}" if field else str(key)


def show(value: object, depth: int = 2) -> str:
    """A short, bounded preview of any value: never recursive beyond `depth`, never longer than PREVIEW_CHARS.

    Untrusted input may be huge or nested thousands deep; repr() of it could take long or overflow the stack.
    """
    if isinstance(value, dict):
        text = "{…}" if depth == 0 else \
            "{" + ", ".join(f"{show(k, 0)}: {show(v, depth - 1)}" for k, v in list(value.items())[:4]) + \
            (", …}" if len(value) > 4 else "}")
    elif isinstance(value, list | tuple):
        text = "[…]" if depth == 0 else \
            "[" + ", ".join(show(v, depth - 1) for v in value[:4]) + (", …]" if len(value) > 4 else "]")
    elif isinstance(value, str | bytes):
        text = repr(value[:PREVIEW_CHARS + 1])
    elif isinstance(value, bool | int | float) or value is None:
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "a very large number"
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"
