"""The policy part of Shoal's table: golden scripts for representative policies, and the shape every script
keeps. Rewrite the golden files with SHOAL_UPDATE_GOLDEN=1 after a deliberate change to render.py, and review
the diff; test_nft.py has nft itself parse each of them."""

from __future__ import annotations

import dataclasses

import pytest

from netpolicy.render import RuleCounter, fingerprint, render, rule_counters
from tests.unit.netpolicy.cases import CASES, WEB_API, ruleset, service
from tests.unit.netpolicy.golden import check_golden


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden_file(name: str) -> None:
    check_golden(name, render(CASES[name]))


def test_every_policy_script_replaces_only_shoals_table_and_never_flushes() -> None:
    for name, case in CASES.items():
        lines = render(case).splitlines()
        assert lines[:3] == ["table inet shoal", "delete table inet shoal", "table inet shoal {"], name
        assert [line for line in lines if line.startswith("table")] == lines[0:1] + lines[2:3], name
        assert not [line for line in lines if "flush" in line or "ruleset" in line], name


def test_without_an_own_subnet_the_table_is_the_nat_part_alone() -> None:
    case = CASES["policy_no_own_subnet"]
    assert render(case) == render(dataclasses.replace(case, sets=(), grants=(), local=(), members=()))
    assert "forward" not in render(case)


def test_ingress_allow_lists_leave_the_table_alone() -> None:
    """Published ports are the proxy's listeners: their allow-lists are enforced there (gate.py), not here."""
    without = ruleset([service("web", ports=[8080]), service("api", ports=[80])], WEB_API)
    assert render(CASES["policy_ingress_allow_list"]) == render(without)


def test_a_replica_moving_changes_set_elements_not_rules() -> None:
    before = render(CASES["policy_default_network"])
    moved = ruleset([service("web", ports=[8080]), service("api", ports=[80])],
                    {"web": ["198.19.1.2", "198.19.3.9"], "api": ["198.19.1.3", "198.19.3.2"]})
    after = render(moved)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert [b.strip() for _, b in changed if "fingerprint" not in b] == [
        "elements = { 198.19.1.2, 198.19.1.3, 198.19.3.2, 198.19.3.9 }"]
    assert fingerprint(moved) != fingerprint(CASES["policy_default_network"])


def test_each_decision_rule_counts_under_a_comment_unique_in_its_chain() -> None:
    for name, case in CASES.items():
        chains: dict[str, list[str]] = {}
        chain = ""
        for line in render(case).splitlines():
            if line.startswith("\tchain "):
                chain = line.split()[1]
                chains[chain] = []
            elif line.startswith("\t}"):
                chain = ""
            elif chain and ("accept" in line or "drop" in line) and "policy accept;" not in line \
                    and "ct state" not in line:
                chains[chain].append(line)  # a rule that decides (a jump or vmap decides nothing by itself)
        for chain, rules in chains.items():
            comments = [rule.split('comment "')[1] for rule in rules if "counter" in rule and 'comment "' in rule]
            assert len(comments) == len(rules) == len(set(comments)), (name, chain, rules)
        if case.own_subnet is not None:
            assert len(chains["to_containers"]) == 2, name  # proxied, default deny


def test_rule_counters_reads_chain_comment_and_counts_from_a_listing() -> None:
    listing = "\n".join([
        "table inet shoal {",
        "\tchain to_containers {",
        "\t\tct state established,related accept",
        "\t\tip saddr @members ip daddr . tcp dport @endpoint_ports counter packets 3 bytes 180 accept comment "
        '"proxied from a member"',
        '\t\tcounter packets 7 bytes 420 drop comment "default deny"',
        "\t}",
        "\tchain admit_api {",
        '\t\tip saddr @net_front counter packets 12 bytes 720 accept comment "from network front"',
        "\t}",
        "}"])
    assert rule_counters(listing) == (
        RuleCounter("to_containers", "proxied from a member", 3, 180),
        RuleCounter("to_containers", "default deny", 7, 420),
        RuleCounter("admit_api", "from network front", 12, 720),
    )
    assert rule_counters(None) == ()
