"""Rollback writes: the previous spec back, with a note that marks the generation as a rollback; identical from
every writer, so concurrent writers converge."""

from __future__ import annotations

import pytest

from node.manifest import describe_changes
from node.rollout import Previous, rollback, rollback_of
from tests.unit.rollout.helpers import V1, V2, revision


def test_the_write_puts_the_previous_spec_back_and_keeps_the_failed_one_as_its_previous() -> None:
    write = rollback(revision(V2, V1, generation=7))
    assert write is not None
    assert (write.service, write.spec, write.expect) == ("web", V1, 7)
    assert write.previous == Previous(7, V2)
    assert write.note == "rollback of generation 7 to the spec of generation 6 (automatic: its replicas failed)"


def test_two_writers_make_byte_identical_writes() -> None:
    assert rollback(revision(V2, V1, generation=7)) == rollback(revision(V2, V1, generation=7))


def test_a_rollback_by_hand_says_so() -> None:
    write = rollback(revision(V2, V1, generation=7), by_hand=True)
    assert write is not None and write.note.endswith("(requested by hand)")


def test_nothing_to_roll_back_to_without_a_previous_spec() -> None:
    assert rollback(revision(V2, None, generation=1)) is None


def test_the_note_reads_back_as_the_generation_rolled_back() -> None:
    write = rollback(revision(V2, V1, generation=12))
    assert write is not None and rollback_of(write.note) == 12


@pytest.mark.parametrize("note", [
    "", "status", "created (image reg/web:1, 5 replicas)", "rollback_config changed",
    describe_changes(V1, V2), "rollback of generation x to 3",
])
def test_other_notes_are_not_rollbacks(note: str) -> None:
    assert rollback_of(note) is None
