"""Cycle tables for one decision: meter + device readings in, clamped setpoints out.

Each row reads like an OpenEMS cycle script: "grid -100 kW, battery idle -> battery -102 kW".
Unless a row says otherwise: buffer 2 kW, relax ramp 50 kW per 1 s cycle, no actuator lag,
T = 400 kW (ceiling 398), X = 0 (floor 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridguard.control.params import MeterGoals
from gridguard.control.view import ChargerRating, MeterView
from gridguard.devices.protocols import StorageReading
from tests.control.helpers import (
    EPOCH_JUNE,
    all_goals,
    battery,
    controller,
    goals,
    inverter,
    pile,
    ratings,
    strategy,
    view,
)

pytestmark = pytest.mark.unit

PILES = (ChargerRating(60.0, 7.0, 1), ChargerRating(60.0, 7.0, 2))
ODM = (400,) * 12
BACKFLOW_ONLY = goals(strategy(2, streaming_kw=0.0), strategy(3, streaming_kw=0.0))


@dataclass(frozen=True)
class Case:
    view: MeterView
    goals: MeterGoals
    storage_kw: tuple[float | None, ...] = ()
    pv_limit_kw: tuple[float | None, ...] = ()
    pile_limit_kw: tuple[float | None, ...] = ()
    lag_s: float = 0.0


COLUMNS = (("storage_kw", "storage"), ("pv_limit_kw", "pv"), ("pile_limit_kw", "chargers"))


def table(cases: dict[str, Case]) -> dict[str, Case]:
    """The cases, once each expects one setpoint per device in its view and checks something:
    a row with an empty or short column would pass without checking what it leaves out."""
    for name, case in cases.items():
        for column, devices in COLUMNS:
            expected, present = len(getattr(case, column)), len(getattr(case.view, devices))
            if expected != present:
                raise ValueError(
                    f"cycle case {name!r}: {column} has {expected} values for {present} "
                    f"{devices} device(s) in the view; give one expectation per device"
                )
        if not any(getattr(case, column) for column, _ in COLUMNS):
            raise ValueError(f"cycle case {name!r} expects nothing: its view has no devices")
    return cases


def check_column(got: tuple[float | None, ...], expected: tuple[float | None, ...]) -> None:
    if None in expected:
        assert got == expected
    else:
        assert got == pytest.approx(expected, abs=0.01)


CASES = {
    # D15: import -100 -> the idle battery absorbs 102 (to the floor X + buffer), PV untouched
    "backflow-storage-absorbs": Case(
        view(-100.0, storage=(battery(),), pv=(inverter(500.0),)),
        BACKFLOW_ONLY,
        storage_kw=(-102.0,),
        pv_limit_kw=(600.0,),
    ),
    # D15/D19: battery full (no charge room) -> PV curtails the 102 instead
    "backflow-full-battery-pv-curtails": Case(
        view(-100.0, storage=(battery(charge_kw=0.0, soc_pct=95.0),), pv=(inverter(500.0),)),
        BACKFLOW_ONLY,
        storage_kw=(0.0,),
        pv_limit_kw=(398.0,),
    ),
    # D19 merit order: the battery takes what it can (50), PV the rest (52)
    "backflow-storage-first-then-pv": Case(
        view(-100.0, storage=(battery(charge_kw=50.0),), pv=(inverter(500.0),)),
        BACKFLOW_ONLY,
        storage_kw=(-50.0,),
        pv_limit_kw=(448.0,),
    ),
    # D19: only PV has a strategy -> the battery rests at 0, PV does it all
    "backflow-pv-strategy-only": Case(
        view(-100.0, storage=(battery(),), pv=(inverter(500.0),)),
        goals(strategy(3, streaming_kw=0.0)),
        storage_kw=(0.0,),
        pv_limit_kw=(398.0,),
    ),
    # D15: baseline X = 50 -> keep 52 of import: the battery charges 152
    "backflow-baseline-margin": Case(
        view(-100.0, storage=(battery(),), pv=(inverter(500.0),)),
        goals(strategy(2, streaming_kw=50.0), strategy(3, streaming_kw=50.0)),
        storage_kw=(-152.0,),
        pv_limit_kw=(600.0,),
    ),
    # D20: far below: battery at its max charge, PV limit clamps at 0, never negative
    "backflow-clamped-to-range": Case(
        view(-1000.0, storage=(battery(),), pv=(inverter(500.0),)),
        BACKFLOW_ONLY,
        storage_kw=(-250.0,),
        pv_limit_kw=(0.0,),
    ),
    # D20 relax slowly: 100 kW of headroom, PV curtailed at 300 -> release 50 (the ramp)
    "release-pv-ramped": Case(
        view(100.0, storage=(battery(charge_kw=0.0, soc_pct=95.0),), pv=(inverter(300.0, 300.0),)),
        BACKFLOW_ONLY,
        pv_limit_kw=(350.0,),
        storage_kw=(0.0,),
    ),
    # D20: only 18 kW of headroom above the floor, battery full -> release only 18
    "release-pv-limited-by-headroom": Case(
        view(20.0, storage=(battery(charge_kw=0.0, soc_pct=95.0),), pv=(inverter(300.0, 300.0),)),
        BACKFLOW_ONLY,
        pv_limit_kw=(318.0,),
        storage_kw=(0.0,),
    ),
    # D15: the battery charging 100 for backflow relaxes toward 0 by the ramp (50)
    "storage-relaxes-toward-idle": Case(
        view(300.0, storage=(battery(-100.0),), pv=(inverter(200.0),)),
        BACKFLOW_ONLY,
        storage_kw=(-50.0,),
        pv_limit_kw=(600.0,),
    ),
    # D16: phase A exports 10 while the total imports 80 -> +36 on the total: charge 36
    "phase-a-exports-total-imports": Case(
        view(80.0, phases=(-10.0, 40.0, 50.0), storage=(battery(),)),
        goals(strategy(2, phase_kw=0.0)),
        storage_kw=(-36.0,),
    ),
    # D17: import 500 over T 400 -> discharge 102 to reach the ceiling T - buffer
    "over-demand-discharge": Case(
        view(500.0, storage=(battery(),)),
        goals(strategy(2, over_demand=ODM)),
        storage_kw=(102.0,),
    ),
    # D17: charging to refill is capped: at 390 kW, charging 100 -> only 8 more allowed
    "over-demand-charge-capped": Case(
        view(390.0, storage=(battery(-100.0),)),
        goals(strategy(2, over_demand=ODM)),
        storage_kw=(-108.0,),
    ),
    # D17: well below T the battery refills, its charge rising by the ramp
    "over-demand-refill-ramped": Case(
        view(200.0, storage=(battery(-100.0),)),
        goals(strategy(2, over_demand=ODM)),
        storage_kw=(-150.0,),
    ),
    # D17: battery at full discharge -> piles throttled 102, lowest priority first to min 7
    "over-demand-piles-by-priority": Case(
        view(500.0, storage=(battery(250.0),), chargers=(pile(60.0), pile(60.0))),
        all_goals(),
        storage_kw=(250.0,),
        pile_limit_kw=(7.0, 11.0),
    ),
    # D17: 110 needed: both to their minimum (106), then the lowest priority one paused
    "over-demand-pause-after-minimum": Case(
        view(508.0, storage=(battery(250.0),), chargers=(pile(60.0), pile(60.0))),
        all_goals(),
        storage_kw=(250.0,),
        pile_limit_kw=(0.0, 7.0),
    ),
    # D17/D20: throttled piles get released by the ramp, highest priority first
    "piles-released-highest-priority-first": Case(
        view(200.0, storage=(battery(0.0),), chargers=(pile(20.0, 20.0), pile(20.0, 20.0))),
        all_goals(),
        pile_limit_kw=(30.0, 60.0),
        storage_kw=(-50.0,),
    ),
    # D19: floor X + 2 = 502 crosses ceiling 398 -> anti-backflow wins: charge 52
    "conflict-backflow-wins": Case(
        view(450.0, storage=(battery(),)),
        goals(strategy(2, streaming_kw=500.0, over_demand=ODM)),
        storage_kw=(-52.0,),
    ),
    # no strategy on the meter: everything released (battery 0, PV and piles at rated)
    "no-strategy-releases": Case(
        view(
            -100.0,
            storage=(battery(-80.0),),
            pv=(inverter(300.0, 300.0),),
            chargers=(pile(7.0, 7.0),),
        ),
        goals(),
        storage_kw=(0.0,),
        pv_limit_kw=(600.0,),
        pile_limit_kw=(60.0,),
    ),
    # D20 with a 1 s actuator lag: reach -102 in one cycle -> command -102 / (1 - e^-1)
    "lag-precompensated": Case(
        view(-100.0, storage=(battery(),)),
        goals(strategy(2, streaming_kw=0.0)),
        storage_kw=(-161.37,),
        lag_s=1.0,
    ),
    # finding 4: 0.01 % of room left (0.05 kWh / sqrt(0.92) in one 1 s cycle = 187.7 kW):
    # the battery takes only that, PV curtails the rest now, not a cycle late
    "energy-room-caps-charge": Case(
        view(-250.0, storage=(battery(soc_pct=94.99),), pv=(inverter(500.0),)),
        BACKFLOW_ONLY,
        storage_kw=(-187.67,),
        pv_limit_kw=(435.67,),
    ),
    # finding 4: a BMS limit binds at once (charge -200 -> -50 next cycle, not lagged), so
    # PV must cover the whole 150 within the cycle: limit 500 - 150 / (1 - e^-1)
    "bms-cut-binds-at-once": Case(
        view(2.0, storage=(battery(-200.0, charge_kw=50.0),), pv=(inverter(500.0),)),
        BACKFLOW_ONLY,
        storage_kw=(-50.0,),
        pv_limit_kw=(262.70,),
        lag_s=1.0,
    ),
    # D21: an offline battery is not written; PV takes the whole correction
    "offline-storage-skipped": Case(
        view(
            -100.0,
            storage=(StorageReading(0.0, 50.0, 0.0, 0.0, online=False),),
            pv=(inverter(500.0),),
        ),
        BACKFLOW_ONLY,
        storage_kw=(None,),
        pv_limit_kw=(398.0,),
    ),
}


@pytest.mark.parametrize("case", table(CASES).values(), ids=CASES.keys())
def test_cycle(case: Case) -> None:
    piles = PILES[: len(case.view.chargers)]
    ctl = controller(ratings(len(case.view.storage), piles), lag_s=case.lag_s)
    command = ctl.decide(case.view, case.goals, 0.0, EPOCH_JUNE).command
    check_column(command.storage_kw, case.storage_kw)
    check_column(command.pv_limit_kw, case.pv_limit_kw)
    check_column(command.charger_limit_kw, case.pile_limit_kw)


UNCHECKED = {
    # the old table skipped an empty PV column: the inverter's limit went unchecked
    "empty-pv-column": (
        Case(view(-100.0, storage=(battery(),), pv=(inverter(500.0),)), BACKFLOW_ONLY, (-102.0,)),
        r"'bad': pv_limit_kw has 0 values for 1 pv device",
    ),
    # a battery in the view with no expected setpoint
    "empty-storage-column": (
        Case(view(-100.0, storage=(battery(),)), BACKFLOW_ONLY),
        r"'bad': storage_kw has 0 values for 1 storage device",
    ),
    # two piles, one expectation: the second pile would go unchecked
    "short-pile-column": (
        Case(view(500.0, chargers=(pile(60.0), pile(60.0))), all_goals(), pile_limit_kw=(7.0,)),
        r"'bad': pile_limit_kw has 1 values for 2 chargers device",
    ),
    # nothing to command, so nothing checked: not a test
    "no-devices": (
        Case(view(-100.0), BACKFLOW_ONLY),
        r"'bad' expects nothing",
    ),
}


@pytest.mark.parametrize(("case", "error"), UNCHECKED.values(), ids=UNCHECKED.keys())
def test_a_case_that_would_check_nothing_is_refused(case: Case, error: str) -> None:
    """An empty or short expectation column is an error, not a row that silently passes."""
    with pytest.raises(ValueError, match=error):
        table({"bad": case})


@pytest.mark.parametrize(
    ("noise_kw", "per_phase", "expected_kw"),
    [
        (0.35, False, 2.0),  # a 0.2 kW-per-phase meter: the configured 2 kW already covers it
        (0.866, False, 4.33),  # 0.5 kW per phase: 5 sigma of the total
        (0.866, True, 2.5),  # the phase floor: 5 sigma of one phase (total / sqrt 3)
    ],
    ids=["quiet-meter", "noisy-total", "noisy-phase"],
)
def test_floor_buffer_from_measured_noise(
    noise_kw: float,
    per_phase: bool,
    expected_kw: float,
) -> None:
    ctl = controller(ratings(1))
    ctl.alignment.noise.noise_kw = noise_kw
    assert ctl.floor_buffer_kw(per_phase=per_phase) == pytest.approx(expected_kw, abs=0.01)
