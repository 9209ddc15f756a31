"""The dedup memory: single and batch reservations agree, and the bound holds."""

from __future__ import annotations

from meterline.ingest.dedup import RecentKeys


def test_a_batch_reserves_like_one_by_one() -> None:
    keys = RecentKeys(capacity=100)
    assert keys.reserve_many("org", ["a", "b", "c"]) == [True, True, True]
    # A known id and a repeat inside the batch are both duplicates.
    assert keys.reserve_many("org", ["c", "d", "d", "e"]) == [False, True, False, True]
    assert keys.reserve_many("other", ["a"]) == [True]
    assert len(keys) == 6


def test_the_oldest_are_forgotten_past_capacity() -> None:
    keys = RecentKeys(capacity=3)
    keys.reserve_many("org", ["a", "b", "c", "d"])
    assert len(keys) == 3
    assert keys.reserve("org", "a")  # forgotten, so new again
    assert not keys.reserve("org", "d")


def test_a_released_reservation_can_be_taken_again() -> None:
    keys = RecentKeys(capacity=10)
    keys.reserve_many("org", ["a", "b"])
    keys.release([keys.key("org", "a")])
    assert keys.reserve_many("org", ["a", "b"]) == [True, False]
