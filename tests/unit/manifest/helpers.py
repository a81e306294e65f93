"""Small builders for manifest tests: a one-service manifest from a YAML fragment of its body."""

from __future__ import annotations

import textwrap

from node.manifest import Manifest, ServiceSpec, parse_manifest

DEMO = "198.18.0.1:5000/shoal-demo:1"


def one_service(body: str = "", *, image: str = DEMO, top: str = "") -> str:
    """YAML text: service `web` with `image` plus the `body` lines (YAML, any indentation), then `top` lines."""
    lines = f"image: {image}\n" + textwrap.dedent(body).strip()
    return "services:\n  web:\n" + textwrap.indent(lines, "    ") + "\n" + textwrap.dedent(top)


def parse_one(body: str = "", **kwargs: str) -> ServiceSpec:
    manifest: Manifest = parse_manifest(one_service(body, **kwargs))
    assert len(manifest.services) == 1
    return manifest.services[0]
