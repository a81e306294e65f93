"""The golden files of Shoal's rendered table: compare a script with its file, or rewrite the file on request."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    """`text` must equal golden/<name>.nft; SHOAL_UPDATE_GOLDEN=1 rewrites the file instead (review the diff)."""
    path = GOLDEN / f"{name}.nft"
    if os.environ.get("SHOAL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"render changed {path.name}; SHOAL_UPDATE_GOLDEN=1 rewrites it"
