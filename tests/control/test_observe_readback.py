"""Commissioning safety on the async cycle: observe mode writes nothing; a setpoint changed
under us by another Modbus master raises an event within a few cycles."""

from __future__ import annotations

import pytest

from gridguard.control.engine import ControlEngine
from gridguard.control.params import ControlTuning
from gridguard.site.config import ControlConfig
from tests.control.test_engine import BACKFLOW, Rig, on9

pytestmark = pytest.mark.unit


def observing(rig: Rig, **control: object) -> None:
    """Rebuild the rig's engine on a site whose [control] has the given settings."""
    config = ControlConfig(**{**rig.site.control.model_dump(), **control})
    rig.site = rig.site.model_copy(update={"control": config})
    rig.engine = ControlEngine(
        rig.site,
        rig.fakes.devices(),
        rig.clock,
        rig.store,
        rig.events.append,
        tuning=ControlTuning(actuator_lag_s=1.0),
    )


async def test_observe_mode_reports_setpoints_and_writes_nothing() -> None:
    """The site exports 290 kW; observe computes the curtailment but no device moves."""
    rig = Rig()
    observing(rig, mode="observe")
    rig.engine.set_strategies(on9(*BACKFLOW))
    untouched = rig.plant.setpoints
    await rig.cycles(10)
    assert rig.plant.setpoints == untouched  # nothing was written
    assert rig.plant.state.grid_power_kw < -200.0  # so the site still exports
    status = rig.engine.status()
    assert status.mode == "observe"
    storage = next(d for d in status.devices if d.kind == "storage")
    pv = next(d for d in status.devices if d.kind == "pv")
    assert storage.setpoint_kw == pytest.approx(-100.0)  # would charge at its rating
    assert pv.setpoint_kw is not None
    assert pv.setpoint_kw < 600.0  # would curtail
    assert "setpoint_overridden" not in rig.kinds()


async def test_enforce_mode_is_the_default_and_says_so() -> None:
    """Without [control] mode, status reports enforce and the devices are driven."""
    rig = Rig()
    rig.engine.set_strategies(on9(*BACKFLOW))
    await rig.cycles(10)
    assert rig.engine.status().mode == "enforce"
    assert rig.plant.state.grid_power_kw >= 0.0


async def test_setpoint_changed_by_another_master_raises_one_event() -> None:
    """Another master writes the PV limit: detected at the next read-back, reported once."""
    rig = Rig()
    observing(rig, readback_interval_s=3.0)
    rig.engine.set_strategies(on9(*BACKFLOW))
    await rig.cycles(5)
    assert "setpoint_overridden" not in rig.kinds()  # our own writes read back as written
    for _ in range(4):  # the intruder keeps writing 600 kW while we keep curtailing
        rig.plant.write("pv", 0, 600.0)
        await rig.engine.run_cycle()
        rig.clock.advance(1.0)
    overridden = [e for e in rig.events if e.kind == "setpoint_overridden"]
    assert len(overridden) == 1
    assert overridden[0].device == ("pv", 5)
    assert "another Modbus master" in overridden[0].message


async def test_readback_off_never_checks() -> None:
    """readback_interval_s = 0 turns the check off."""
    rig = Rig()
    observing(rig, readback_interval_s=0.0)
    rig.engine.set_strategies(on9(*BACKFLOW))
    for _ in range(15):
        rig.plant.write("pv", 0, 600.0)
        await rig.engine.run_cycle()
        rig.clock.advance(1.0)
    assert "setpoint_overridden" not in rig.kinds()
