"""What keeps a battery that works the PV's morning (the energy policy without a forecast) off
the floor: the sun's climb still to come, serving at a pace a late meter cannot fool, the lag
the storage shows rather than the one told, the energy room left after the setpoints in flight,
and a command-delay identifier that does not score the sun's own moves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gridguard.control.controller import MeterController
from gridguard.control.dispatch.inflight import CommandDelay, _explicable
from gridguard.control.dispatch.rest import serving_kw
from gridguard.control.dispatch.rise import Climb, climbed, next_rise_kw, rises_kw
from gridguard.control.dispatch.split import energy_limited
from gridguard.control.params import ControlTuning, MeterGoals
from gridguard.control.view import Command
from gridguard.devices.protocols import PvReading
from gridguard.lab.closedloop import simulate
from gridguard.plant.model import PlantInputs, PlantParams, PlantState, StorageParams
from gridguard.site.config import ControlConfig
from tests.control.helpers import ZONE, battery, goals, inverter, ratings, strategy, view

pytestmark = pytest.mark.unit

MONDAY = 1717344000.0  # 2024-06-03 00:00 Asia/Shanghai
BATTERY = StorageParams(250.0, 500.0, 10.0, 95.0, 0.92)
BACKFLOW = goals(strategy(2, streaming_kw=0.0), strategy(3, streaming_kw=0.0))
GUARDED = goals(
    strategy(2, streaming_kw=0.0, over_demand=(400,) * 12), strategy(3, streaming_kw=0.0)
)
PV_ONLY = goals(strategy(3, streaming_kw=0.0))


@pytest.mark.parametrize(
    ("rise_kw", "prev_kw", "alpha", "room_kw", "expected"),
    [
        (100.0, 0.0, 0.28, 500.0, 72.0),  # first rise after a cloud edge: (1 - alpha) of it
        (72.0, 100.0, 0.28, 500.0, 72.0 * 0.72),  # the readings decay as told
        (61.0, 100.0, 0.63, 500.0, 61.0 * 0.61),  # a lag told short: the readings' decay wins
        (10.0, 10.0, 0.63, 500.0, 10.0),  # a steady ramp goes on
        (20.0, 10.0, 0.63, 500.0, 20.0),  # a ramp speeding up: no more than the last rise
        (100.0, 0.0, 0.28, 30.0, 30.0),  # never above the room to its limit
        (0.4, 0.0, 0.28, 500.0, 0.0),  # jitter is no climb
        (-50.0, 0.0, 0.28, 500.0, 0.0),  # a fall (a cloud) is nothing to come
        (100.0, 0.0, 0.28, 0.0, 0.0),  # at its limit: held
    ],
    ids=[
        "first",
        "decay",
        "told-short",
        "ramp",
        "speeding",
        "limit",
        "jitter",
        "fall",
        "held",
    ],
)
def test_next_rise(
    rise_kw: float, prev_kw: float, alpha: float, room_kw: float, expected: float
) -> None:
    got = next_rise_kw(rise_kw=rise_kw, prev_rise_kw=prev_kw, alpha=alpha, room_kw=room_kw)
    assert got == pytest.approx(expected)


def test_climb_is_carried_per_inverter() -> None:
    first = climbed(Climb(), (inverter(100.0), inverter(50.0)), 0.5)
    assert first.rise_kw == (0.0, 0.0)  # no history: no rise
    second = climbed(first, (inverter(200.0), inverter(50.0)), 0.5)
    assert second.rise_kw == (100.0, 0.0)
    got = rises_kw(first, second, (inverter(200.0), inverter(50.0)), alpha=0.5)
    assert got == pytest.approx((50.0, 0.0))
    silent = (PvReading(200.0, 600.0, 600.0, online=False), inverter(50.0))
    third = climbed(second, silent, 0.5)  # gone silent mid-climb: taken to go on climbing
    assert third.power_kw == pytest.approx((250.0, 50.0))
    assert rises_kw(second, third, silent, alpha=0.5) == pytest.approx((25.0, 0.0))


@pytest.mark.parametrize(
    ("storage_kw", "gap_kw", "unseen_kw", "expected"),
    [
        (0.0, 80.0, 0.0, 80.0),  # nothing asked lately: the whole gap
        (50.0, 80.0, 50.0, 80.0),  # 50 asked may not show yet: only the 30 beyond it
        (50.0, 30.0, 50.0, 50.0),  # all of the gap may be what was asked: hold
        (100.0, -20.0, 50.0, 80.0),  # below the serving target: back off at once
        (10.0, -40.0, 0.0, 0.0),  # never a charge for it
    ],
    ids=["fresh", "beyond-unseen", "hold", "back-off", "no-charge"],
)
def test_serving_pace(storage_kw: float, gap_kw: float, unseen_kw: float, expected: float) -> None:
    got = serving_kw(storage_kw=storage_kw, gap_kw=gap_kw, unseen_kw=unseen_kw)
    assert got == pytest.approx(expected)


def test_energy_room_left_after_the_setpoints_in_flight() -> None:
    """At 94.9 % of a 500 kWh unit (0.5 kWh to 95 %, 0.52 kWh on the AC side), charging at
    250 kW: a setpoint one second in flight takes 0.069 kWh of it first."""
    v = view(0.0, storage=(battery(-250.0, soc_pct=94.9),))
    now = energy_limited(v, ratings(1), horizon_s=10.0).storage[0].max_charge_kw
    later = energy_limited(v, ratings(1), horizon_s=10.0, ahead_s=1.0).storage[0].max_charge_kw
    room_kwh = 0.1 * 5.0 / 0.92**0.5
    assert now == pytest.approx(room_kwh / (10.0 / 3600.0))
    assert later == pytest.approx((room_kwh - 250.0 / 3600.0) / (10.0 / 3600.0))


def test_cycle_the_battery_charges_for_the_climb_to_come() -> None:
    """Cycle script, 3 s lag told: grid at the floor (2 kW), the inverter (limit at rating)
    rose 20 kW since the last cycle after a cloud edge; the battery charges for the
    (1 - alpha) x 20 kW still to come, not only for what the meter shows."""

    def second_storage_kw(climb: bool) -> float:
        tuning = ControlTuning(actuator_lag_s=3.0, planner_enabled=False, pv_climb=climb)
        ctl = MeterController(ratings=ratings(1), config=ControlConfig(), tuning=tuning, zone=ZONE)
        ctl.decide(view(2.0, storage=(battery(),), pv=(inverter(200.0),)), BACKFLOW, 0.0, MONDAY)
        v = view(2.0, storage=(battery(),), pv=(inverter(220.0),))
        storage = ctl.decide(v, BACKFLOW, 1.0, MONDAY + 1.0).command.storage_kw[0]
        assert storage is not None
        return storage

    a = 1.0 - 2.718281828459045 ** (-1.0 / 3.0)
    assert second_storage_kw(climb=False) == pytest.approx(0.0, abs=0.01)
    assert second_storage_kw(climb=True) == pytest.approx(-(1.0 - a) * 20.0 / a, abs=0.01)


def _run(
    tuning: ControlTuning,
    world: Callable[[int], PlantInputs],
    plan: Callable[[int], MeterGoals],
    *,
    seconds: int,
    plant: PlantParams,
    start_s: float,
    soc_pct: float,
    counts: Callable[[int], bool],
) -> tuple[int, float]:
    """Seconds with import below X = 0 where ``counts`` says, and the deepest, kW."""
    ctl = MeterController(ratings=ratings(1), config=ControlConfig(), tuning=tuning, zone=ZONE)
    below = [0, 0.0]

    def hook(t: int, _i: PlantInputs, s: PlantState, _d: object) -> None:
        if counts(t) and s.grid_power_kw < 0.0:
            below[0] += 1
            below[1] = min(below[1], s.grid_power_kw)

    simulate(
        plant,
        ctl,
        plan,
        world,
        seconds=seconds,
        start_epoch_s=start_s,
        soc_pct=(soc_pct,),
        on_step=hook,
    )
    return int(below[0]), -below[1]


def _clouds(t: int) -> PlantInputs:
    """300 kW of load; the sun 100 kW behind a cloud, 500 kW out of it, every other minute."""
    return PlantInputs((100.0,) * 3, (100.0 if (t // 60) % 2 == 0 else 500.0,), ())


def _under_clouds(
    tuning: ControlTuning, plant: PlantParams, seconds: int, counts: Callable[[int], bool]
) -> tuple[int, float]:
    """:func:`_run` under :func:`_clouds` at 09:00 on a Monday, backflow only, battery half
    full (so it absorbs the surplus at every cloud edge)."""
    return _run(
        tuning,
        _clouds,
        lambda _t: BACKFLOW,
        seconds=seconds,
        plant=plant,
        start_s=MONDAY + 9 * 3600.0,
        soc_pct=50.0,
        counts=counts,
    )


def test_the_climb_after_a_cloud_is_caught_with_a_slow_inverter() -> None:
    """Lag 3 s, battery half full, so it absorbs the surplus (the PV is not curtailed and
    its climb back from each cloud follows the inverter's lag). Without the climb counted
    the grid dipped below X one rise late every cycle, well past the 5 s settle window."""
    plant = PlantParams((BATTERY,), (600.0,), (), actuator_lag_s=3.0, meter_noise_kw=0.2)

    def outside(climb: bool) -> tuple[int, float]:
        tuning = ControlTuning(actuator_lag_s=3.0, pv_climb=climb)
        return _under_clouds(tuning, plant, 600, lambda t: t % 60 > 5)

    before_s, before_kw = outside(climb=False)
    assert before_s > 10  # the test can fail: the tail was below X
    assert before_kw > 5.0
    assert outside(climb=True) == (0, 0.0)


def _morning(_t: int) -> PlantInputs:
    return PlantInputs((400.0 / 3,) * 3, (300.0,), ())


def test_serving_never_counts_on_a_meter_not_proved_on_time() -> None:
    """Energy policy without a forecast, 08:00, a full battery, a meter one cycle late that
    nothing has shown yet (the battery was idle: no evidence). When it starts serving the
    load, each 50 kW move was counted twice (the late meter did not show it yet) and the
    grid went 45 kW below X; asking only for what is left beyond the moves still unseen, no
    second is below X."""
    plant = PlantParams(
        (BATTERY,), (600.0,), (), actuator_lag_s=1.0, meter_noise_kw=0.2, meter_delay_s=1.0
    )

    def below(unseen: bool) -> tuple[int, float]:
        return _run(
            ControlTuning(actuator_lag_s=1.0, rest_without_forecast=True, serve_unseen=unseen),
            _morning,
            lambda t: GUARDED if t >= 60 else PV_ONLY,  # the storage strategy from 60 s on
            seconds=180,
            plant=plant,
            start_s=MONDAY + 8 * 3600.0,
            soc_pct=95.0,
            counts=lambda _t: True,
        )

    before_s, before_kw = below(unseen=False)
    assert before_s > 0  # the test can fail: serving overshot
    assert before_kw > 20.0
    assert below(unseen=True) == (0, 0.0)


@pytest.mark.parametrize(
    ("response_kw", "inputs", "expected"),
    [
        (-30.0, [-50.0, -10.0, 0.0], True),  # a fall toward a cut some candidate asked
        (0.0, [0.0, 0.0, 0.0], True),  # held at its limit
        (-200.0, [-50.0, -10.0, 0.0], False),  # a cloud under the cut: deeper than any asked
        (40.0, [0.0, 0.0, 0.0], False),  # a rise: the sun's
    ],
    ids=["cut", "held", "cloud", "rise"],
)
def test_only_moves_a_limit_explains_are_evidence(
    response_kw: float, inputs: list[float], expected: bool
) -> None:
    assert _explicable(response_kw, inputs) is expected


def test_storage_gain_is_the_lag_the_responses_show() -> None:
    """Told 1 s (alpha 0.63), the unit answers as a 2 s lag does (0.39 of each step asked):
    the gain is taken from the first window with real moves and held through quiet cycles."""
    delay = CommandDelay()
    x = 0.0
    true_alpha = 0.3935
    for cycle in range(40):
        setpoint = -200.0 if (cycle // 5) % 2 == 0 else 0.0
        if cycle >= 30:
            setpoint = x + (1.5 if cycle % 2 else -1.5)  # noise-sized moves only
        delay.observe(view(0.0, storage=(battery(x),)))
        delay.wrote(Command((setpoint,), (), ()))
        x += true_alpha * (setpoint - x)
        if cycle == 3:
            assert delay.storage_gain() is None  # no full window yet
    gain = delay.storage_gain()
    assert gain is not None
    assert gain == pytest.approx(true_alpha, abs=0.01)


def test_a_lag_told_short_is_corrected_from_the_storage_responses() -> None:
    """Lag 2 s told 1 s, the battery absorbing the surplus at every cloud edge: pre-compensated
    for the lag told, the battery covered 62 % of each move and the grid dipped below X, again
    and again past the settle window. With the lag its responses show (from the first clear
    moves: counted from the third edge on) not one second."""
    plant = PlantParams((BATTERY,), (600.0,), (), actuator_lag_s=2.0, meter_noise_kw=0.2)

    def outside(learn: bool) -> tuple[int, float]:
        tuning = ControlTuning(actuator_lag_s=1.0, learn_lag=learn)
        return _under_clouds(tuning, plant, 1200, lambda t: t >= 180 and t % 60 > 4)

    before_s, before_kw = outside(learn=False)
    assert before_s > 10  # the test can fail: the lag told short left dips past the window
    assert before_kw > 5.0
    assert outside(learn=True) == (0, 0.0)


def test_the_sun_under_a_cut_is_no_evidence_of_a_command_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lag 3 s told, setpoints on time, the sun jumping between five levels every 7 s (a fixed
    irregular order) with the PV cut and released under it: scored, its falls under a cut and
    its rises under a limit looked like late responses to the cuts, and a delay was taken for
    265 cycles out of 2,700 (the decision then rings on a view one cycle ahead). Not scored:
    never."""
    levels = [150.0, 250.0, 400.0, 550.0, 650.0]
    seq = [levels[(7 * i * i + 3 * i) % 5] for i in range(400)]  # a fixed, irregular order

    def sun(t: int) -> PlantInputs:
        return PlantInputs((100.0,) * 3, (seq[t // 7],), ())

    def cycles_late() -> int:
        plant = PlantParams((BATTERY,), (700.0,), (), actuator_lag_s=3.0, meter_noise_kw=0.2)
        tuning = ControlTuning(actuator_lag_s=3.0)
        ctl = MeterController(ratings=ratings(1), config=ControlConfig(), tuning=tuning, zone=ZONE)
        late = [0]

        def hook(_t: int, _i: PlantInputs, _s: PlantState, _d: object) -> None:
            late[0] += ctl.commands.delay != 0

        simulate(
            plant,
            ctl,
            lambda _t: BACKFLOW,
            sun,
            seconds=2700,
            start_epoch_s=MONDAY + 9 * 3600.0,
            soc_pct=(60.0,),
            on_step=hook,
        )
        return late[0]

    assert cycles_late() == 0
    monkeypatch.setattr("gridguard.control.dispatch.inflight._explicable", lambda _r, _i: True)
    assert cycles_late() > 0  # the test can fail: scored, the sun's moves made a delay
