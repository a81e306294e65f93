"""Service VIPs: deterministic from the set of names, inside the range and off its reserved addresses, and stable
exactly as vip.py's docstring says (properties checked with Hypothesis)."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.discovery.vip import LAB_DNS, VipRange, VipTable, assign_vips, candidates

LAB = VipRange.lab()
SMALL = VipRange.parse("10.0.0.0/28", reserved_low=1)  # 16 addresses - network, broadcast, .1 = 13: collisions galore
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
name_sets = st.sets(names, max_size=40)


def moved(before: VipTable, after: VipTable) -> set[str]:
    """Names whose VIP changed, or that lost theirs (a full range)."""
    return {n for n, vip in before.vips.items() if after.vips.get(n) != vip}


def test_the_lab_range_skips_the_network_the_first_nine_the_dns_address_and_broadcast() -> None:
    pool = {IPv4Address(a) for a in LAB.pool()}
    assert len(pool) == 256 - 1 - 9 - 1 - 1
    excluded = {f"198.19.0.{i}" for i in range(10)} | {LAB_DNS, "198.19.0.255"}
    assert not pool & {IPv4Address(a) for a in excluded}
    assert IPv4Address("198.19.0.10") in pool and IPv4Address("198.19.0.254") in pool


def test_one_service_gets_its_first_candidate() -> None:
    table = assign_vips(["api"], LAB)
    first = next(candidates("api", len(LAB.pool())))
    assert table == VipTable({"api": IPv4Address(LAB.pool()[first])})


def test_known_values_never_change_between_releases() -> None:
    """Every node must compute the same VIPs, whatever version it runs: pinned, so a change to the hash shows."""
    table = assign_vips(["api", "web", "db"], LAB)
    assert {n: str(v) for n, v in table.vips.items()} == PINNED


PINNED = {"api": "198.19.0.177", "db": "198.19.0.85", "web": "198.19.0.88"}


@pytest.mark.parametrize(("cidr", "agents", "message"), [
    ("2001:db8::/64", [], "IPv4 only"),
    ("10.0.0.0/8", [], "at most a /16"),
    ("10.0.0.0/24", ["10.0.1.53"], "not in the service range"),
    ("10.0.0.0/30", [], "leaves no address"),
    ("10.0.0.1/24", [], "has host bits set"),
])
def test_bad_ranges_are_refused_naming_the_problem(cidr: str, agents: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VipRange.parse(cidr, agents)


def test_a_full_range_leaves_the_last_names_unplaced() -> None:
    all_names = [f"s{i:02d}" for i in range(20)]
    table = assign_vips(all_names, SMALL)
    assert len(table.vips) == len(SMALL.pool()) == 13
    assert table.unplaced == tuple(sorted(all_names)[13:])
    assert sorted(table.vips) == sorted(all_names)[:13]


@given(name_sets, st.randoms(use_true_random=False))
def test_the_table_depends_only_on_the_set_of_names(names: set[str], rng: random.Random) -> None:
    shuffled = list(names) * 2  # duplicates and any order
    rng.shuffle(shuffled)
    assert assign_vips(shuffled, SMALL) == assign_vips(sorted(names), SMALL)
    assert assign_vips(shuffled, LAB) == assign_vips(sorted(names), LAB)


@given(name_sets)
def test_vips_are_unique_in_range_and_never_reserved(names: set[str]) -> None:
    for vip_range in (LAB, SMALL):
        table = assign_vips(names, vip_range)
        vips = list(table.vips.values())
        assert len(set(vips)) == len(vips)
        allowed = {IPv4Address(a) for a in vip_range.pool()}
        assert all(v in allowed for v in vips)
        assert set(table.vips) | set(table.unplaced) == names


@given(name_sets)
def test_a_vip_depends_only_on_the_names_that_sort_before_it(names: set[str]) -> None:
    table = assign_vips(names, SMALL)
    for name, vip in table.vips.items():
        assert assign_vips({n for n in names if n <= name}, SMALL).vips[name] == vip


@given(name_sets, names)
def test_adding_a_service_moves_only_later_names_and_only_through_a_chain_of_taken_addresses(
        names: set[str], new: str) -> None:
    names.discard(new)
    for vip_range in (LAB, SMALL):
        before, after = assign_vips(names, vip_range), assign_vips(names | {new}, vip_range)
        movers = moved(before, after)
        assert all(n > new for n in movers)
        # each mover's old address is now held by the newcomer or by another mover
        holders = {after.vips[n] for n in movers | {new} if n in after.vips}
        assert all(before.vips[n] in holders for n in movers)
        assert len(after.unplaced) <= len(before.unplaced) + 1
        if not movers and new in after.vips:  # no collision: the newcomer took a free address
            assert after.vips[new] not in set(before.vips.values())


@given(name_sets.filter(bool), st.data())
def test_removing_a_service_moves_only_later_names_onto_freed_addresses(names: set[str], data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from(sorted(names)))
    for vip_range in (LAB, SMALL):
        before, after = assign_vips(names, vip_range), assign_vips(names - {gone}, vip_range)
        movers = moved(before, after) - {gone}
        assert all(n > gone for n in movers)
        assert all(n in after.vips for n in movers)  # removing never takes a VIP away
        freed = {before.vips[n] for n in movers | {gone} if n in before.vips}
        assert all(after.vips[n] in freed for n in movers)


def test_with_few_services_in_the_lab_range_most_additions_move_nothing() -> None:
    """A measure, not a proof: 20 services, then one more, over many random name sets. The newcomer ("new-...")
    sorts before all of them, the worst case: any collision moves someone, so about 20/244 = 8% of additions."""
    rng = random.Random(7)
    moves = 0
    trials = 300
    for _ in range(trials):
        base = {f"svc-{rng.randrange(10**9)}" for _ in range(20)}
        before, after = assign_vips(base, LAB), assign_vips(base | {f"new-{rng.randrange(10**9)}"}, LAB)
        moves += bool(moved(before, after))
    assert moves / trials < 0.15


def test_candidates_cover_the_whole_pool() -> None:
    seen = list(candidates("api", 13))
    assert set(seen) == set(range(13))
    assert ip_network("198.19.0.0/24") == LAB.network
