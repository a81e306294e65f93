"""netpolicy.apply against the real nft, each test in a fresh network namespace of its own (`unshare --net`),
so nothing on the machine changes and nothing is left to clean up: the namespace dies with its process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import netpolicy

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None,
        reason="needs root, nftables and unshare",
    ),
]

CODE_ROOT = str(Path(netpolicy.__file__).resolve().parents[1])
PRELUDE = """
import json
from netpolicy.apply import NftError, apply, present, remove
from netpolicy.model import Ruleset
from netpolicy.render import listed_fingerprint, render
"""


def in_fresh_netns(body: str) -> Any:
    """Run `body` (Python; it prints one JSON value) in a new network namespace; return that value."""
    env = dict(os.environ, PYTHONPATH=CODE_ROOT)
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", PRELUDE + body],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_apply_twice_leaves_one_table_with_the_wanted_set() -> None:
    listing = in_fresh_netns("""
script = render(Ruleset.of(["198.19.1.0/24", "198.19.5.0/24"]))
apply(script)
apply(script)
print(json.dumps(present()))
""")
    assert listing.count("table inet shoal") == 1
    assert "elements = { 198.19.1.0/24, 198.19.5.0/24 }" in listing
    assert "ip saddr @cluster_subnets ip daddr @cluster_subnets snat ip to ip saddr" in listing


def test_apply_replaces_the_previous_definition() -> None:
    listing = in_fresh_netns("""
apply(render(Ruleset.of(["198.19.1.0/24", "198.19.5.0/24"])))
apply(render(Ruleset.of(["198.19.7.0/24"])))
print(json.dumps(present()))
""")
    assert "elements = { 198.19.7.0/24 }" in listing
    assert "198.19.1.0" not in listing


def test_present_lists_the_fingerprint_render_wrote() -> None:
    found = in_fresh_netns("""
ruleset = Ruleset.of(["198.19.1.0/24"])
apply(render(ruleset))
print(json.dumps([listed_fingerprint(present()), listed_fingerprint(render(ruleset))]))
""")
    assert found[0] is not None and found[0] == found[1]


def test_remove_is_idempotent_and_present_is_none_after_it() -> None:
    assert in_fresh_netns("""
remove()
apply(render(Ruleset.of()))
remove()
remove()
print(json.dumps(present()))
""") is None


def test_remove_leaves_other_tables_alone() -> None:
    listing = in_fresh_netns("""
import subprocess
subprocess.run(["nft", "add", "table", "ip", "nat"], check=True)
apply(render(Ruleset.of()))
remove()
print(json.dumps(subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout))
""")
    assert listing.split("\n") == ["table ip nat", ""]


def test_a_rejected_script_raises_naming_the_command_and_nft_stderr() -> None:
    message = in_fresh_netns("""
try:
    apply("table inet shoal { chain fwd { type filter hook forward priority 0; } }\\n")
except NftError as exc:
    print(json.dumps(str(exc)))
""")
    assert message.startswith("`nft -f -` failed (exit 1): ")
    assert "syntax error, unexpected fwd" in message
