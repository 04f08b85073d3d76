"""The one-line explanation: which bound binds, why, and what the setpoints do (a table)."""

from __future__ import annotations

import math

import pytest

from gridguard.control.controller import Decision
from gridguard.control.laws.combine import Bounds
from gridguard.control.params import MeterGoals
from gridguard.control.reason import explain
from gridguard.control.view import Command, MeterView
from gridguard.devices.protocols import MeterReading, PvReading, StorageReading
from tests.control.helpers import goals, strategy

pytestmark = pytest.mark.unit

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
) -> Decision:
    return Decision(
        command=Command((storage_kw,), (pv_kw,), ()),
        bounds=Bounds(floor_kw, ceiling_kw),
        target_kw=target_kw,
        shave_kw=shave_kw,
        demand_kw=0.0,
        dynamic_demand_kw=0.0,
        failsafe=failsafe,
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
        decision(-4.0, None, floor_kw=12.0),
        "anti-backflow: import 8.1 kW < baseline 10 + buffer 2 -> storage -4 kW",
    ),
    (
        # why: the worst phase sets the floor above the total's: name the phase
        "phase",
        view(6.0, (4.0, 1.5, 0.5)),
        PHASE,
        decision(-7.5, None, floor_kw=13.5),
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
        decision(12.0, None, ceiling_kw=498.0, target_kw=500.0, shave_kw=500.0),
        "over-demand: import 510 kW > target 500 - buffer 2 -> storage 12 kW",
    ),
    (
        # why: the battery cannot hold T: the raised level is what binds, say so
        "raised level",
        view(620.0),
        DEMAND,
        decision(40.0, None, ceiling_kw=598.0, target_kw=500.0, shave_kw=600.0),
        "over-demand: import 620 kW > level 600 (T 500 cannot hold) - buffer 2 -> storage 40 kW",
    ),
    (
        # why: PV is curtailed as well: the limit shows
        "pv curtailed",
        view(3.0),
        BACKFLOW,
        decision(-100.0, 290.0, floor_kw=12.0),
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
def test_explain(case: str, seen: MeterView, wanted: MeterGoals, made: Decision, line: str) -> None:
    assert explain(seen, wanted, made, BUFFER_KW) == line, case
