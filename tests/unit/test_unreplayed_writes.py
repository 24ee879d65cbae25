"""Which of this process's table writes a changelog replay can miss (topics/unreplayed.py)."""

from __future__ import annotations

from topics.unreplayed import UnreplayedWrites


def missed(writes: UnreplayedWrites[str, str], replayed_to: int) -> dict[str, str | None]:
    return dict(writes.missed_by(replayed_to))


def test_a_write_not_landed_yet_is_missed_by_any_replay() -> None:
    writes: UnreplayedWrites[str, str] = UnreplayedWrites()
    writes.sent("a", "PENDING")
    writes.sent("a", "TRIGGERED")
    assert missed(writes, 10**9) == {"a": "TRIGGERED"}


def test_a_write_landed_outside_a_rebalance_is_forgotten() -> None:
    writes: UnreplayedWrites[str, str] = UnreplayedWrites()
    sequence = writes.sent("a", "PENDING")
    writes.landed("a", sequence, 7, rebalancing=False)
    assert missed(writes, -1) == {}
    assert len(writes) == 0


def test_an_earlier_write_landing_keeps_the_later_one() -> None:
    writes: UnreplayedWrites[str, str] = UnreplayedWrites()
    first = writes.sent("a", "PENDING")
    writes.sent("a", "TRIGGERED")
    writes.landed("a", first, 3, rebalancing=False)
    assert missed(writes, 3) == {"a": "TRIGGERED"}


def test_a_write_landed_during_a_rebalance_is_missed_only_past_the_replayed_offset() -> None:
    writes: UnreplayedWrites[str, str] = UnreplayedWrites()
    a = writes.sent("a", "TRIGGERED")
    b = writes.sent("b", "FINISHED")
    writes.landed("a", a, 5, rebalancing=True)
    writes.landed("b", b, 9, rebalancing=True)
    assert missed(writes, 6) == {"b": "FINISHED"}
    assert missed(writes, 9) == {}
    writes.settled()
    assert len(writes) == 0


def test_settling_keeps_writes_still_on_their_way() -> None:
    writes: UnreplayedWrites[str, str] = UnreplayedWrites()
    landed = writes.sent("a", "TRIGGERED")
    writes.landed("a", landed, 5, rebalancing=True)
    writes.sent("a", "FINISHED")  # sent after it landed, not landed itself
    writes.sent("b", "PENDING")
    writes.settled()
    assert missed(writes, 100) == {"a": "FINISHED", "b": "PENDING"}


def test_writes_kept_by_a_rebalance_without_a_recovery_go_at_the_next_landing() -> None:
    writes: UnreplayedWrites[str, str] = UnreplayedWrites()
    a = writes.sent("a", "TRIGGERED")
    writes.landed("a", a, 5, rebalancing=True)
    b = writes.sent("b", "PENDING")
    writes.landed("b", b, 6, rebalancing=False)
    assert len(writes) == 0


def test_a_delete_is_remembered_as_none() -> None:
    writes: UnreplayedWrites[str, str] = UnreplayedWrites()
    writes.sent("a", None)
    assert missed(writes, 0) == {"a": None}
