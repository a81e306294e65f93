"""netpolicy's model and render: canonical rulesets, golden scripts, and scripts nft itself accepts.

Golden files live in golden/; after a deliberate change to render.py, rewrite them with
SHOAL_UPDATE_GOLDEN=1 and review the diff. test_nft.py parses every golden file with `nft -c` (check mode, in a
private network namespace).
"""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from netpolicy.model import Ruleset
from netpolicy.render import fingerprint, listed_fingerprint, render
from tests.unit.netpolicy.golden import check_golden

CASES = {
    "empty": Ruleset.of(),
    "one_subnet": Ruleset.of(["198.19.1.0/24"]),
    "lab_three_hosts": Ruleset.of(["198.19.3.0/24", "198.19.1.0/24", "198.19.2.0/24"]),
    "overlapping_and_scattered": Ruleset.of(["10.0.1.0/24", "10.0.0.0/16", "198.19.9.0/24", "172.16.4.0/22"]),
}


# --- model ------------------------------------------------------------------------------------


def test_ruleset_sorts_and_dedupes_subnets() -> None:
    ruleset = Ruleset.of(["198.19.2.0/24", "198.19.9.0/24", "198.19.2.0/24"])
    assert ruleset.cluster_subnets == (IPv4Network("198.19.2.0/24"), IPv4Network("198.19.9.0/24"))


def test_ruleset_merges_overlapping_and_adjacent_subnets() -> None:
    # nft refuses overlapping elements in an interval set ("conflicting intervals specified").
    ruleset = Ruleset.of(["198.19.0.0/16", "198.19.2.0/24", "10.1.0.0/24", "10.1.1.0/24"])
    assert [str(n) for n in ruleset.cluster_subnets] == ["10.1.0.0/23", "198.19.0.0/16"]


@pytest.mark.parametrize("bad", ["198.19.1.1/24", "2001:db8::/64", "api", ""])
def test_ruleset_refuses_anything_but_a_canonical_ipv4_network(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an IPv4 network"):
        Ruleset.of([bad])


def test_ruleset_refuses_subnets_that_are_not_canonical() -> None:
    with pytest.raises(ValueError, match="sorted and merged"):
        Ruleset((IPv4Network("198.19.2.0/24"), IPv4Network("198.19.1.0/24")))


# --- render -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden_file(name: str) -> None:
    check_golden(name, render(CASES[name]))


def test_render_replaces_only_shoals_table_in_one_script() -> None:
    lines = render(CASES["one_subnet"]).splitlines()
    assert lines[:3] == ["table inet shoal", "delete table inet shoal", "table inet shoal {"]
    assert not [line for line in lines if "flush" in line]
    assert [line for line in lines if line.startswith("table")] == lines[0:1] + lines[2:3]


def test_render_of_an_empty_set_has_no_elements_line() -> None:
    assert "elements" not in render(Ruleset.of())


def test_fingerprint_is_in_the_comment_and_follows_the_subnets() -> None:
    one, two = CASES["one_subnet"], CASES["lab_three_hosts"]
    assert listed_fingerprint(render(one)) == fingerprint(one)
    assert fingerprint(one) != fingerprint(two)
    assert fingerprint(one) == fingerprint(Ruleset.of(["198.19.1.0/24"]))


def test_listed_fingerprint_of_no_table_or_a_foreign_table_is_none() -> None:
    assert listed_fingerprint(None) is None
    assert listed_fingerprint('table inet shoal {\n\tcomment "hand made"\n}\n') is None


