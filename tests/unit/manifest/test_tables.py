"""The key table is the single source: every key it names is documented, and x-shoal's readers match it."""

from __future__ import annotations

import re
from pathlib import Path

from node.manifest import keys
from node.manifest.xshoal import READERS

DOCS = (Path(__file__).resolve().parents[3] / "docs" / "manifest.md").read_text()
# every name written in code spans, e.g. `update_config.max_failure_ratio` gives both names
SPANS = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DOCS, flags=re.DOTALL))
DOCUMENTED = {word for span in SPANS for word in re.findall(r"[\w-]+", span)}
TABLES = {name: table for name, table in vars(keys).items() if isinstance(table, keys.KeyTable)}


def test_every_key_in_the_tables_is_documented() -> None:
    missing = sorted({f"{name}.{key}" for name, table in TABLES.items()
                      for key in (*table.supported, *table.unsupported, *table.ignored) if key not in DOCUMENTED})
    assert missing == []


def test_no_key_is_in_two_classes() -> None:
    for name, table in TABLES.items():
        classes = [set(table.supported), set(table.unsupported), set(table.ignored)]
        assert sum(len(c) for c in classes) == len(set().union(*classes)), name


def test_nullable_and_required_keys_are_keys_of_their_table() -> None:
    for name, table in TABLES.items():
        assert table.nullable <= {*table.supported, *table.ignored}, name
        assert table.required <= set(table.supported) and not table.required & table.nullable, name


def test_x_shoal_readers_match_its_table() -> None:
    assert set(READERS) == set(keys.X_SHOAL.supported)
