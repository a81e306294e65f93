"""YAML (or JSON) text -> plain data (dict/list/str/int/float/bool/None); the only module that imports yaml.

The text is untrusted, so loading is bounded: at most MAX_TEXT_BYTES of UTF-8, MAX_YAML_NODES nodes counted
*after* alias expansion (a "billion laughs" fails while it is being read, long before it is expanded), depth
MAX_YAML_DEPTH (aliases included), no recursive aliases, no duplicate keys (PyYAML would keep the last one
silently), keys are strings only. Scalars resolve as in YAML 1.2's core schema, as Compose's Go loader reads
them: `80:80` is a string (YAML 1.1 made it the base-60 number 4880), `yes`/`on` are strings, `0755` is 755.
Only JSON-like types are constructed; any other tag (!!binary, !!timestamp, !!python/...) is an error.
Text that is a JSON object is read by the json module (same data, same bounds), since libyaml cannot.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.resolver import BaseResolver

from node.manifest.errors import ManifestError, child
from node.manifest.fields import is_text
from node.manifest.limits import MAX_TEXT_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES

try:  # libyaml scans ~6x faster; the composer (where the bounds are) stays ours either way
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

_CORE = "tag:yaml.org,2002:"
_STR, _MERGE = f"{_CORE}str", f"{_CORE}merge"


class _Resolver(BaseResolver):
    """YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), plus `<<` merge keys."""


for _tag, _pattern, _first in (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    ("float", r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
     "-+.0123456789"),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("merge", r"<<", "<"),
):
    _Resolver.add_implicit_resolver(f"{_CORE}{_tag}", re.compile(f"^(?:{_pattern})$"), list(_first))


class _Constructor(SafeConstructor):
    """Only the JSON-like types; any other tag falls to construct_undefined (an error)."""

    def construct_core_bool(self, node: ScalarNode) -> bool:
        return self.construct_scalar(node).lower() == "true"

    def construct_core_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node)
        if len(text) > 40:  # no Compose number is this long; int() of thousands of digits is slow, then refused
            raise ConstructorError(None, None, f"the number {text[:20]}… is too long", node.start_mark)
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        return int(text[2:] if base != 10 else text, base)  # a malformed explicit !!int raises ValueError: reported

    def construct_core_float(self, node: ScalarNode) -> float:
        text = self.construct_scalar(node).lower()
        return float(text.replace(".inf", "inf").replace(".nan", "nan"))

    yaml_constructors: ClassVar[dict[str | None, Any]] = {  # PyYAML's per-class registry, replaced whole
        f"{_CORE}null": SafeConstructor.construct_yaml_null, f"{_CORE}bool": construct_core_bool,
        f"{_CORE}int": construct_core_int, f"{_CORE}float": construct_core_float,
        f"{_CORE}str": SafeConstructor.construct_yaml_str, f"{_CORE}seq": SafeConstructor.construct_yaml_seq,
        f"{_CORE}map": SafeConstructor.construct_yaml_map, None: SafeConstructor.construct_undefined,
    }


class _Exceeded(Exception):
    """A bound or rule broken while composing; carries the path, since the composer knows where it is."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


class _BoundedLoader(Composer, _Constructor, _Resolver, _Parser):
    """Composes node by node, counting expanded nodes and depth, and checking each mapping's keys."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)
        self._path: list[str] = []
        self._heights: list[int] = []  # one entry per node being composed: the height of its subtree so far
        self._nodes = 0  # nodes read so far, an alias counting as the whole subtree it stands for
        self._anchored: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, height)
        self._open: set[str] = set()  # anchors whose node is still being composed

    def _field(self) -> str:
        return ".".join(self._path)

    def _add(self, nodes: int, height: int) -> None:
        self._nodes += nodes
        if self._nodes > MAX_YAML_NODES:
            raise _Exceeded(self._field(), f"more than {MAX_YAML_NODES} YAML nodes (aliases expanded); "
                                           "a Compose manifest is far smaller, so this looks like an alias bomb")
        if len(self._heights) + 1 + height > MAX_YAML_DEPTH:
            raise _Exceeded(self._field(), f"nested deeper than {MAX_YAML_DEPTH} levels (aliases expanded)")

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        label = index.value if isinstance(index, ScalarNode) else str(index) if isinstance(index, int) else None
        if label is not None:
            self._path.append(label)
        event = self.peek_event()
        anchor: str | None = getattr(event, "anchor", None)
        if isinstance(event, AliasEvent) and anchor is not None:
            if anchor in self._open:
                raise _Exceeded(self._field(), f"alias *{anchor} refers to a node that contains it; "
                                               "recursive structures are not allowed")
            size, height = self._anchored.get(anchor, (1, 0))  # an undefined alias fails in super()
            self._add(size, height)
            node = super().compose_node(parent, index)
        else:
            self._add(1, 0)
            start = self._nodes - 1
            self._heights.append(0)
            if anchor is not None:
                self._open.add(anchor)
            node = super().compose_node(parent, index)
            height = self._heights.pop()
            if anchor is not None:
                self._open.discard(anchor)
                self._anchored[anchor] = (self._nodes - start, height)
        if self._heights:
            self._heights[-1] = max(self._heights[-1], height + 1)
        if label is not None:
            self._path.pop()
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag not in (_STR, _MERGE):
                what = key.value if isinstance(key, ScalarNode) else f"a {key.id}"
                raise _Exceeded(self._field(), f"mapping key {what!r} (line {key.start_mark.line + 1}) is not a "
                                               "string; keys must be strings (quote it)")
            if (key.tag, key.value) in seen:
                raise _Exceeded(child(self._field(), key.value),
                                f"duplicate key (again at line {key.start_mark.line + 1}); YAML readers keep only "
                                "one of them silently, so remove or rename one")
            seen.add((key.tag, key.value))
        return node


_NOT_JSON = object()


def _load_json(text: str) -> object:
    """JSON read as JSON: libyaml refuses the surrogate-pair escapes ("\\ud83d\\ude00") JSON writers emit for
    characters beyond U+FFFF. Returns _NOT_JSON for anything else (e.g. a YAML flow mapping), which YAML then reads."""

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        mapping: dict[str, object] = {}
        for key, value in pairs:
            if key in mapping:
                raise _Exceeded("", f"duplicate key {key!r}; JSON readers keep only one of them silently, so "
                                    "remove one")
            mapping[key] = value
        return mapping

    def refuse(constant: str) -> None:
        raise _Exceeded("", f"{constant} is not a JSON value")

    try:
        data = json.loads(text, object_pairs_hook=unique, parse_constant=refuse)
    except _Exceeded as exc:
        raise ManifestError(exc.field, None, exc.problem) from None
    except RecursionError:
        raise ManifestError("", None, f"nested deeper than {MAX_YAML_DEPTH} levels") from None
    except ValueError:  # JSONDecodeError, or an int of more than 4300 digits: let YAML say what is wrong
        return _NOT_JSON
    _check_json(data)
    return data


def _check_json(data: object) -> None:
    """JSON has no aliases, so its node count is bounded by its size; its depth is bounded here, iteratively, and
    its strings must be text as YAML's are (a JSON escape can encode a lone surrogate, which no text holds)."""
    stack: list[tuple[object, str, int]] = [(data, "", 1)]
    while stack:
        value, field, depth = stack.pop()
        if depth > MAX_YAML_DEPTH:
            raise ManifestError(field, None, f"nested deeper than {MAX_YAML_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            if any(isinstance(text, str) and not is_text(text) for text in (key, item)):
                raise ManifestError(field, None, "holds a string with an escaped lone surrogate: not valid Unicode")
            stack.append((item, child(field, key), depth + 1))


def load(text: str | bytes) -> object:
    """Parse one YAML (or JSON) document into plain data; ManifestError for anything else."""
    if isinstance(text, str):
        try:
            text = text.encode("utf-8")  # as the file would be; a lone surrogate is not text
        except UnicodeEncodeError as exc:
            raise ManifestError("", None, f"not valid Unicode text (character {exc.start})") from None
    if len(text) > MAX_TEXT_BYTES:
        raise ManifestError("", len(text), f"{len(text)} bytes is more than the limit of {MAX_TEXT_BYTES} (1 MiB)")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError("", None, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    decoded = decoded.removeprefix("\ufeff")
    if decoded.lstrip().startswith("{"):
        data = _load_json(decoded)
        if data is not _NOT_JSON:
            return data
    loader = None
    try:
        loader = _BoundedLoader(decoded)  # the pure-Python reader checks the characters here
        return loader.get_single_data()
    except _Exceeded as exc:
        raise ManifestError(exc.field, None, exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ManifestError("", None, f"not valid YAML: {what}{where}") from None
    except (yaml.YAMLError, ValueError, UnicodeError, RecursionError) as exc:
        raise ManifestError("", None, f"not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    finally:
        if loader is not None:
            loader.dispose()
