"""list/post coalescing (D13) as a cycle table: changes at times, checks at times."""

from __future__ import annotations

import pytest

from gridguard.edge.coalesce import Coalescer

pytestmark = pytest.mark.unit

SETTLE_S, MAX_DELAY_S = 0.05, 1.0


@pytest.mark.parametrize(
    ("changes_s", "check_s", "due", "why"),
    [
        ([], 5.0, False, "nothing changed: nothing to publish"),
        ([0.0], 0.049, False, "changes may still come: wait for the pause"),
        ([0.0], 0.05, True, "a pause of settle_s after the last change"),
        ([0.0, 0.04], 0.06, False, "the second change restarts the pause"),
        ([0.0, 0.04], 0.09, True, "... which ends settle_s after it"),
        ([i * 0.01 for i in range(101)], 0.999, False, "a burst: not yet max_delay_s"),
        ([i * 0.01 for i in range(101)], 1.0, True, "a burst: due max_delay_s after its start"),
    ],
)
def test_due(changes_s: list[float], check_s: float, due: bool, why: str) -> None:
    schedule = Coalescer(SETTLE_S, MAX_DELAY_S)
    for at_s in changes_s:
        schedule.changed(at_s)
    assert schedule.take(check_s) is due, why


def test_due_once_then_again_after_new_changes() -> None:
    schedule = Coalescer(SETTLE_S, MAX_DELAY_S)
    schedule.changed(0.0)
    assert schedule.due_at() == SETTLE_S
    assert schedule.take(0.1)
    assert not schedule.take(0.2), "published: not due again without a change"
    assert schedule.due_at() is None
    schedule.changed(3.0)
    assert schedule.due_at() == pytest.approx(3.0 + SETTLE_S)
    assert schedule.take(3.0 + SETTLE_S)


def test_max_delay_counts_from_the_first_unpublished_change() -> None:
    schedule = Coalescer(SETTLE_S, MAX_DELAY_S)
    for index in range(300):
        schedule.changed(index * 0.01)
    assert schedule.due_at() == pytest.approx(MAX_DELAY_S)
