"""The explanation rules: which bound binds, which events are told, and the one-line reason
(the binding bound, why, and what the setpoints do: a table)."""

from __future__ import annotations

import math

import pytest

from gridguard.control.controller import Decision
from gridguard.control.explain import Explanation, Narrator, binding_bound, reason_line
from gridguard.control.laws.combine import Bounds
from gridguard.control.params import MeterGoals
from gridguard.control.view import Command, MeterView
from gridguard.devices.protocols import MeterReading, PvReading, StorageReading
from tests.control.helpers import goals, strategy

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


BUFFER_KW = 2.0


def view(grid_kw: float, phases: tuple[float, float, float] | None = None) -> MeterView:
    return MeterView(
        meter=MeterReading(grid_kw, phases or (grid_kw / 3,) * 3),
        storage=(StorageReading(0.0, 50.0, 100.0, 100.0),),
        pv=(PvReading(300.0, 400.0, 400.0),),
        chargers=(),
    )


def decision(
    storage_kw: float | None,
    pv_kw: float | None,
    *,
    floor_kw: float = -math.inf,
    ceiling_kw: float = math.inf,
    target_kw: float | None = None,
    shave_kw: float | None = None,
    failsafe: bool = False,
    binding: str | None = None,
    phase: str | None = None,
) -> Decision:
    return Decision(
        command=Command((storage_kw,), (pv_kw,), ()),
        bounds=Bounds(floor_kw, ceiling_kw),
        target_kw=target_kw,
        shave_kw=shave_kw,
        demand_kw=0.0,
        dynamic_demand_kw=0.0,
        failsafe=failsafe,
        explain=Explanation(binding=binding, binding_phase=phase, buffer_kw=BUFFER_KW),
    )


BACKFLOW = goals(strategy(2, streaming_kw=10.0), strategy(3, streaming_kw=10.0))
PHASE = goals(strategy(2, streaming_kw=0.0, phase_kw=1.0))
DEMAND = goals(strategy(2, over_demand=(500,) * 12))

CASES: list[tuple[str, MeterView, MeterGoals, Decision, str]] = [
    (
        # why: the issue's own example, import below X + buffer, storage charges
        "backflow",
        view(8.1),
        BACKFLOW,
        decision(-4.0, None, floor_kw=12.0, binding="anti-backflow"),
        "anti-backflow: import 8.1 kW < baseline 10 + buffer 2 -> storage -4 kW",
    ),
    (
        # why: the worst phase sets the floor above the total's: name the phase
        "phase",
        view(6.0, (4.0, 1.5, 0.5)),
        PHASE,
        decision(-7.5, None, floor_kw=13.5, binding="phase", phase="C"),
        (
            "single-phase anti-backflow: phase C import 0.5 kW < baseline 1 + buffer 2"
            " -> storage -7.5 kW"
        ),
    ),
    (
        # why: import at the ceiling T - buffer: over-demand binds, storage discharges
        "demand",
        view(510.0),
        DEMAND,
        decision(
            12.0, None, ceiling_kw=498.0, target_kw=500.0, shave_kw=500.0, binding="over-demand"
        ),
        "over-demand: import 510 kW > target 500 - buffer 2 -> storage 12 kW",
    ),
    (
        # why: the battery cannot hold T: the raised level is what binds, say so
        "raised level",
        view(620.0),
        DEMAND,
        decision(
            40.0, None, ceiling_kw=598.0, target_kw=500.0, shave_kw=600.0, binding="over-demand"
        ),
        "over-demand: import 620 kW > level 600 (T 500 cannot hold) - buffer 2 -> storage 40 kW",
    ),
    (
        # why: PV is curtailed as well: the limit shows
        "pv curtailed",
        view(3.0),
        BACKFLOW,
        decision(-100.0, 290.0, floor_kw=12.0, binding="anti-backflow"),
        "anti-backflow: import 3 kW < baseline 10 + buffer 2 -> storage -100 kW, PV limit 290 kW",
    ),
    (
        # why: nothing binds and nothing moves
        "idle",
        view(150.0),
        BACKFLOW,
        decision(0.0, 400.0, floor_kw=12.0),
        "within bounds: import 150 kW -> hold",
    ),
    (
        # why: no meter reading: the fail-safe is named first
        "failsafe",
        view(0.0),
        BACKFLOW,
        decision(-0.0, 0.0, failsafe=True),
        "fail-safe: no valid meter reading -> PV limit 0 kW",
    ),
]


@pytest.mark.parametrize(
    ("case", "seen", "wanted", "made", "line"), CASES, ids=[c[0] for c in CASES]
)
def test_reason_line(
    case: str, seen: MeterView, wanted: MeterGoals, made: Decision, line: str
) -> None:
    """The one-line reason renders the same explanation the status fields carry."""
    assert reason_line(seen, wanted, made) == line, case
