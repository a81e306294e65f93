"""The lab's image registry and its demo images, as data.

Role: the registry is Debian's `docker-registry` (CNCF Distribution 2.8) serving plain HTTP on the bridge
address 198.18.0.1:5000 only, so every host reaches it over its wire and nothing outside the machine does; its
data lives in the lab dir. This module holds its config, command line and identity check, the demo images'
names, and the judgement of what the registry already holds.
Boundary: pure; registryd.py runs the registry and pushes the images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from node.lab.plan import GATEWAY, Cmd

PORT = 5000
ADDRESS = f"{GATEWAY}:{PORT}"
URL = f"http://{ADDRESS}"
DEMO_REPOSITORY = "shoal-demo"
DEMO_TAGS = ("1", "2")


def demo_image(tag: str) -> str:
    """The fully qualified name hosts pull (always qualified: a short name may resolve to localhost/)."""
    return f"{ADDRESS}/{DEMO_REPOSITORY}:{tag}"


def tags_url(repository: str = DEMO_REPOSITORY) -> str:
    return f"{URL}/v2/{repository}/tags/list"


def config_yaml(data_dir: Path) -> str:
    """The registry's config: filesystem storage in the lab dir, deletes allowed, listening on the bridge
    address alone. YAML, written by hand: every value is a plain path or address."""
    return f"""\
# Written by `shoal lab`: the lab's image registry (docker-registry serve THIS_FILE).
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: {json.dumps(str(data_dir))}
  delete:
    enabled: true
http:
  addr: {ADDRESS}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def serve_argv(config: Path) -> Cmd:
    return ("docker-registry", "serve", str(config))


def is_registry(args: Sequence[str], config: Path) -> bool:
    """True if a command line is the registry serving `config` (a recorded pid may have been reused)."""
    return len(args) >= 3 and Path(args[0]).name == "docker-registry" and args[1:] == ["serve", str(config)]


def missing_tags(tag_list: object | None, wanted: Iterable[str] = DEMO_TAGS) -> list[str]:
    """The wanted tags a /v2/<repo>/tags/list answer lacks; None (the repository is unknown: 404) lacks all.
    Raises ValueError for an answer that is not the registry's documented shape."""
    if tag_list is None:
        return list(wanted)
    if not isinstance(tag_list, dict):
        raise ValueError("the registry's tag list is not a JSON object")
    tags = tag_list.get("tags") or []  # Distribution answers "tags": null once every tag is deleted
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError("the registry's tag list has no list of strings under 'tags'")
    return [tag for tag in wanted if tag not in tags]
