"""The explanation rules: which bound binds, and which events are told."""

from __future__ import annotations

import math

import pytest

from gridguard.control.explain import Narrator, binding_bound
from gridguard.control.laws.combine import Bounds

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("grid_kw", "bounds", "source", "expected"),
    [
        (2.5, Bounds(2.0, 398.0), "anti-backflow", "anti-backflow"),  # at the floor
        (397.5, Bounds(2.0, 398.0), "anti-backflow", "over-demand"),  # at the ceiling
        (200.0, Bounds(2.0, 398.0), "anti-backflow", None),  # free in between
        (30.0, Bounds(30.0, math.inf), "phase", "phase"),  # the phase floor is the higher
    ],
    ids=["floor", "ceiling", "free", "phase-floor"],
)
def test_binding_bound(grid_kw: float, bounds: Bounds, source: str, expected: str | None) -> None:
    assert binding_bound(grid_kw, bounds, floor_source=source, buffer_kw=2.0) == expected


def test_narrator_tells_each_move_once() -> None:
    """Level moves, a new month maximum and 'cannot hold T' are told once, when they happen."""
    n = Narrator()
    assert n.notes(level_kw=400.0, target_kw=400.0, month_max_kw=0.0, reason="T holds") == ()
    kinds = [k for k, _ in n.notes(level_kw=450.0, target_kw=400.0, month_max_kw=410.0, reason="r")]
    assert kinds == ["level_moved", "new_month_max", "cannot_hold_target"]
    assert n.notes(level_kw=450.0, target_kw=400.0, month_max_kw=410.0, reason="r") == ()
