"""Fail-safe setpoints (D21) per goal, as a table."""

from __future__ import annotations

import pytest

from gridguard.control.laws.failsafe import failsafe_command
from gridguard.control.params import MeterGoals
from gridguard.control.view import ChargerRating, MeterRatings, StorageRating
from tests.control.helpers import battery, goals, inverter, pile, strategy, view

pytestmark = pytest.mark.unit

RATINGS = MeterRatings(
    storage=(StorageRating(250.0, 500.0, 10.0, 95.0),),
    chargers=(ChargerRating(60.0, 7.0, 1),),
)
ODM = (400,) * 12


@pytest.mark.parametrize(
    ("storage_kw", "g", "expected"),
    [
        # anti-backflow: PV to 0 % and the battery stops discharging (charging may go on)
        (
            120.0,
            goals(strategy(2, streaming_kw=0.0), strategy(3, streaming_kw=0.0)),
            (0.0, 0.0, 60.0),
        ),
        (
            -80.0,
            goals(strategy(2, streaming_kw=0.0), strategy(3, streaming_kw=0.0)),
            (-80.0, 0.0, 60.0),
        ),
        # over-demand: piles to their minimum, battery stops charging (discharge may go on)
        (
            -80.0,
            goals(strategy(2, over_demand=ODM), strategy(4, over_demand=ODM)),
            (0.0, 600.0, 7.0),
        ),
        (
            120.0,
            goals(strategy(2, over_demand=ODM), strategy(4, over_demand=ODM)),
            (120.0, 600.0, 7.0),
        ),
        # both on the battery: it stops
        (120.0, goals(strategy(2, streaming_kw=0.0, over_demand=ODM)), (0.0, 600.0, 60.0)),
        # no strategy: resting positions
        (120.0, goals(), (0.0, 600.0, 60.0)),
    ],
    ids=[
        "backflow-stop-discharge",
        "backflow-keep-charging",
        "demand-stop-charging",
        "demand-keep-discharging",
        "both-stop",
        "none-rest",
    ],
)
def test_failsafe(storage_kw: float, g: MeterGoals, expected: tuple[float, float, float]) -> None:
    v = view(0.0, storage=(battery(storage_kw),), pv=(inverter(500.0),), chargers=(pile(60.0),))
    cmd = failsafe_command(v, RATINGS, g, pv_failsafe_pct=0.0)
    assert (cmd.storage_kw[0], cmd.pv_limit_kw[0], cmd.charger_limit_kw[0]) == expected
