"""nft itself on what render writes: every golden script parses (`nft -c`, check mode), and a policy table
applied through apply.ensure is listed as rendered and left alone when it is already there.

Each test works in a private network namespace it creates and deletes (netns.py), so the machine's own
ruleset, and the lab's hosts, never see a change.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import netpolicy
from netpolicy.render import RuleCounter, render, rule_counters
from tests.unit.netpolicy.cases import CASES, THREE_TIER, ruleset, service
from tests.unit.netpolicy.golden import GOLDEN
from tests.unit.netpolicy.netns import needs_root_nft, private_netns, run_in

pytestmark = [pytest.mark.root, needs_root_nft]

CODE_ROOT = str(Path(netpolicy.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    with private_netns() as name:
        yield name


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.nft")), ids=lambda p: p.stem)
def test_golden_file_parses_with_nft_check_mode(netns: str, path: Path) -> None:
    done = run_in(netns, "nft", "-c", "-f", str(path))
    assert done.returncode == 0, done.stderr


def test_check_mode_changes_nothing(netns: str) -> None:
    run_in(netns, "nft", "-c", "-f", str(GOLDEN / "policy_two_networks.nft"))
    assert run_in(netns, "nft", "list", "tables").stdout == ""


def ensure_in(netns: str, *scripts: str) -> list[dict[str, object]]:
    """apply.ensure each script in turn inside `netns`; after each: whether it applied, the handle-annotated
    listing, and the plain listing."""
    code = f"""
import json, subprocess, sys
sys.path.insert(0, {CODE_ROOT!r})
from netpolicy.apply import ensure, present
out = []
for script in json.load(sys.stdin):
    applied = ensure(script)
    annotated = subprocess.run(["nft", "-a", "list", "table", "inet", "shoal"], capture_output=True, text=True).stdout
    out.append({{"applied": applied, "annotated": annotated, "listing": present()}})
print(json.dumps(out))
"""
    done = run_in(netns, sys.executable, "-c", code, stdin=json.dumps(list(scripts)))
    assert done.returncode == 0, done.stderr
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


def test_a_policy_applies_once_and_a_second_ensure_is_a_no_op() -> None:
    policies = [service("web", "front", ports=[8080]), service("api", "back", "front", ports=[80]),
                service("db", "back", ports=[5432])]
    first, again = render(ruleset(policies, THREE_TIER)), render(CASES["policy_two_networks"])
    assert first == again  # the same policies and endpoints render the same script
    with private_netns() as netns:
        one, two = ensure_in(netns, first, again)
    assert one["applied"] is True and two["applied"] is False
    table_line = str(one["annotated"]).splitlines()[0]
    assert table_line.startswith("table inet shoal { # handle ")
    assert str(two["annotated"]).splitlines()[0] == table_line  # the very same table: not re-created
    listing = str(one["listing"])
    flat = " ".join(listing.split())  # nft wraps long element lists
    for expected in ("chain forward_filter {", "type filter hook forward priority filter - 10; policy accept;",
                     "ip daddr 198.19.1.0/24 jump to_containers", "ip daddr vmap @dispatch",
                     "set net_back { type ipv4_addr elements = { 198.19.1.3, 198.19.1.4, 198.19.2.3, 198.19.3.2 } }",
                     "198.19.1.2 : jump admit_web, 198.19.1.3 : jump admit_api, 198.19.1.4 : jump admit_db"):
        assert expected in flat, expected
    assert rule_counters(listing) == (
        RuleCounter("to_containers", "proxied from a member", 0, 0),
        RuleCounter("to_containers", "default deny", 0, 0),
        RuleCounter("admit_api", "from network back", 0, 0),
        RuleCounter("admit_api", "from network front", 0, 0),
        RuleCounter("admit_db", "from network back", 0, 0),
        RuleCounter("admit_web", "from network front", 0, 0),
    )


def test_a_changed_policy_replaces_the_table_and_leaves_other_tables_alone() -> None:
    moved = {**THREE_TIER, "db": ["198.19.2.3", "198.19.3.7"]}  # db's replica on this host moved away
    policies = [service("web", "front", ports=[8080]), service("api", "back", "front", ports=[80]),
                service("db", "back", ports=[5432])]
    with private_netns() as netns:
        assert run_in(netns, "nft", "add", "table", "ip", "nat").returncode == 0  # stands in for netavark's
        one, two = ensure_in(netns, render(CASES["policy_two_networks"]), render(ruleset(policies, moved)))
        tables = run_in(netns, "nft", "list", "tables").stdout
    assert one["applied"] is True and two["applied"] is True
    assert "198.19.1.4" not in str(two["listing"]) and "198.19.3.7" in str(two["listing"])
    assert tables.splitlines() == ["table ip nat", "table inet shoal"]
