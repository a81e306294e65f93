"""Hashes and scores: the packed (SIMD-within-a-register) ranking equals the per-pair definition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.placement.score import NodeHashes, global_replica, hash64, key_hash, score

u64 = st.integers(0, 2**64 - 1)


@given(st.lists(u64, max_size=300), u64)
def test_packed_ranks_are_the_pair_scores_with_the_node_position_in_the_low_bits(hashes: list[int], key: int) -> None:
    packed = NodeHashes(hashes)
    low = (1 << max(1, (len(hashes) - 1).bit_length())) - 1
    assert packed.ranks(key) == [score(key, h) & ~low | i for i, h in enumerate(hashes)]
    assert [packed.node_of(r) for r in packed.ranks(key)] == list(range(len(hashes)))


@given(st.lists(u64, min_size=2, max_size=50, unique=True), u64)
def test_ranking_a_node_ignores_the_other_nodes(hashes: list[int], key: int) -> None:
    """Rendezvous: removing a node never reorders the rest, so a key's choice moves only if it chose that node."""
    full, without_first = NodeHashes(hashes).ranks(key), NodeHashes(hashes[1:]).ranks(key)
    order = sorted(range(1, len(hashes)), key=lambda i: full[i], reverse=True)
    assert order == [i + 1 for i in sorted(range(len(hashes) - 1), key=lambda i: without_first[i], reverse=True)]


def test_hashes_are_blake2b_and_fixed() -> None:
    """Pinned values: every node of every version must hash alike (change them only with RULES_VERSION)."""
    assert hash64("") == 0xE4A6A0577479B2B4  # blake2b(b"", digest_size=8)
    assert key_hash("web", 0) == hash64("web\0" + "0")
    assert score(1, 2) == score(3, 0)  # a function of key XOR node


def test_a_global_replica_index_is_the_id_prefix_or_32_hashed_bits() -> None:
    assert global_replica("00ff00ff" + "a" * 24) == 0x00FF00FF
    assert 0 <= global_replica("not-hex-id") < 2**32
    assert global_replica("not-hex-id") == global_replica("not-hex-id")
