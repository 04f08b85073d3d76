"""The site simulator: plant models behind Modbus TCP servers, driven by a scenario or a profile.

``gridguard sim run --config edge.toml`` reads the same site file as the edge agent and serves
every meter and device it names on its loopback host:port with the device's register map, so
the agent runs unmodified against it. One plant (``sim.plant``) per gateway meter holds the
devices configured behind that meter. Every step the world (site load, PV availability, plugged
vehicles) comes from a scenario trace or the built-in daily profile, the plant advances under the
setpoints the agent last wrote, and the plant state is written into the registers.

Split of the world over meters: site load is shared equally by the gateway meters; PV
availability is shared over all inverters in proportion to their rating.
Meter registers hold what a real meter shows: secondary values (primary / (PT x CT)), negated
for a meter mounted reversed (``direction = -1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gridguard.control.demand import DemandMeter
from gridguard.plant.model import PlantInputs, PlantState, measure
from gridguard.plant.stepper import PlantStepper, plant_params
from gridguard.sim.servers import EndpointServer, RegisterBank, SimulatorError, SiteServers
from gridguard.site.config import SiteConfig
from gridguard.site.topology import MeterBranch
from gridguard.vocab import DeviceKind

DAY_S = 86400.0
DEMAND_WINDOW_S = 900
NOMINAL_V = 230.0
LOAD_SPLIT = (0.36, 0.33, 0.31)
"""Share of the load on phases A, B, C: a little unbalanced, as real sites are."""


@dataclass(frozen=True, slots=True)
class World:
    """The site's surroundings at one instant."""

    load_kw: float
    """Site load in kW (>= 0), all gateway meters together."""
    pv_available_kw: float
    """What all PV inverters together could produce now, kW (>= 0)."""
    vehicles_plugged: bool
    """Whether vehicles are plugged in at the charging piles."""
    load_phase_kw: tuple[float, float, float] | None = None
    """Site load per phase (A, B, C) when known; else ``load_kw`` split by ``LOAD_SPLIT``."""
    charger_kw: float | None = None
    """What all plugged vehicles together would draw; None: each pile's rating when plugged."""


Profile = Callable[[float], World]
"""World at a simulated time in seconds (seconds of day for the built-in profile)."""


def daily_profile(pv_rated_kw: float) -> Profile:
    """A working day: PV sine from 06:00 to 18:00 at 85 % of rating, an office/factory load
    from 0.4 to 1.0 of ``max(100, 0.7 * pv_rated_kw)`` kW, vehicles plugged 08:00 to 18:00."""
    scale_kw = max(100.0, 0.7 * pv_rated_kw)

    def world(t_s: float) -> World:
        hour = (t_s % DAY_S) / 3600.0
        sun = max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0)) if 6.0 < hour < 18.0 else 0.0
        work = max(0.0, math.sin(math.pi * (hour - 6.0) / 14.0)) if 6.0 < hour < 20.0 else 0.0
        return World(
            load_kw=scale_kw * (0.4 + 0.6 * work),
            pv_available_kw=0.85 * pv_rated_kw * sun,
            vehicles_plugged=8.0 <= hour < 18.0,
        )

    return world


def _set(bank: RegisterBank, name: str, value: float) -> None:
    """Write a point if this device's map has it (user maps may carry fewer points)."""
    if name in bank.regmap.points:
        bank.set(name, value)


class MeterPlant:
    """One gateway meter and the devices behind it: plant state <-> registers."""

    def __init__(self, branch: MeterBranch, servers: SiteServers) -> None:
        self.meter = branch.meter
        self.branch = branch
        self.storage = branch.storage
        self.pv = branch.pv
        self.chargers = branch.chargers
        soc = tuple((s.soc_min_pct + s.soc_max_pct) / 2 for s in branch.storage)
        self.plant = PlantStepper(plant_params(branch, actuator_lag_s=1.0), soc)
        self.demand = DemandMeter(window_s=DEMAND_WINDOW_S, step_s=1, zone=ZoneInfo("UTC"))
        self.import_kwh = 0.0
        self.export_kwh = 0.0
        self.servers = servers
        self._hook_writes()

    @property
    def state(self) -> PlantState:
        return self.plant.state

    def _hook_writes(self) -> None:
        for index, dev in enumerate(self.storage):
            self.servers.devices["storage", dev.id].on_write = self._writer("storage", index)
        for index, inverter in enumerate(self.pv):
            self.servers.devices["pv", inverter.id].on_write = self._writer(
                "pv", index, pct_of=inverter.rated_kw
            )
        for index, pile in enumerate(self.chargers):
            self.servers.devices["chargers", pile.id].on_write = self._writer("charger", index)

    def _writer(
        self, kind: DeviceKind, index: int, pct_of: float | None = None
    ) -> Callable[[str, float], None]:
        def on_write(name: str, value: float) -> None:
            if name in ("power_setpoint_kw", "power_limit_kw"):
                self.plant.write(kind, index, value)
            elif name == "power_limit_pct" and pct_of is not None:
                self.plant.write(kind, index, value * pct_of / 100.0)

        return on_write

    def inputs(self, world: World, site: SiteConfig) -> PlantInputs:
        """This meter's share of the world: load split over gateway meters, PV by rating,
        vehicle demand equally over all piles (each capped at its rating)."""
        meters = max(1, len(site.topology.gateways))
        phases = world.load_phase_kw or tuple(world.load_kw * s for s in LOAD_SPLIT)
        pv_rated = sum(p.rated_kw for p in site.pv)
        share = world.pv_available_kw / pv_rated if pv_rated > 0 else 0.0
        a, b, c = (kw / meters for kw in phases)

        def vehicle_kw(rated_kw: float) -> float:
            if world.charger_kw is not None:
                return min(rated_kw, world.charger_kw / max(1, len(site.chargers)))
            return rated_kw if world.vehicles_plugged else 0.0

        return PlantInputs(
            load_phase_kw=(a, b, c),
            pv_available_kw=tuple(share * p.rated_kw for p in self.pv),
            charger_demand_kw=tuple(vehicle_kw(c.rated_kw) for c in self.chargers),
        )

    def step(self, t_s: float, dt_s: float, inputs: PlantInputs, rng: random.Random) -> None:
        if dt_s > 0:  # dt 0 only publishes the present state (at start)
            self.plant.step(inputs, dt_s)
        self._publish_meter(t_s, dt_s, measure(self.plant.params, self.plant.state, rng))
        self._publish_devices(inputs)

    def _publish_meter(self, t_s: float, dt_s: float, phases_kw: tuple[float, ...]) -> None:
        bank = self.servers.bank("meters", self.meter.id)
        ratio = self.meter.pt * self.meter.ct
        seen = [kw * self.meter.direction / ratio for kw in phases_kw]  # secondary, as mounted
        total = sum(seen)
        for phase, kw in zip("abc", seen, strict=True):
            bank.set(f"phase_{phase}_power_kw", kw)
            _set(bank, f"voltage_{phase}_v", NOMINAL_V / self.meter.pt)
            _set(bank, f"current_{phase}_a", abs(kw) * 1000.0 / NOMINAL_V)
            _set(bank, f"power_factor_{phase}", 1.0)
        bank.set("total_power_kw", total)
        _set(bank, "power_factor_total", 1.0)
        if dt_s > 0:
            self.demand.add(total, dt_s, t_s)
        _set(bank, "forward_demand_kw", self.demand.running_kw)
        _set(bank, "max_demand_month_kw", self.demand.month_max_kw)
        self.import_kwh += max(total, 0.0) * dt_s / 3600.0
        self.export_kwh += max(-total, 0.0) * dt_s / 3600.0
        _set(bank, "import_energy_kwh", self.import_kwh)
        _set(bank, "export_energy_kwh", self.export_kwh)

    def _publish_devices(self, inputs: PlantInputs) -> None:
        state = self.plant.state
        for i, dev in enumerate(self.storage):
            bank, soc = self.servers.bank("storage", dev.id), state.storage_soc_pct[i]
            bank.set("power_kw", state.storage_power_kw[i])
            bank.set("soc_pct", soc)
            _set(bank, "max_charge_kw", dev.rated_kw if soc < dev.soc_max_pct else 0.0)
            _set(bank, "max_discharge_kw", dev.rated_kw if soc > dev.soc_min_pct else 0.0)
            _set(bank, "run_state", bank.regmap.run_state_running[0])
        for i, inverter in enumerate(self.pv):
            bank = self.servers.bank("pv", inverter.id)
            bank.set("power_kw", state.pv_power_kw[i])
            limit_kw = self.plant.setpoints.pv_limit_kw[i]
            _set(bank, "power_limit_kw", limit_kw)
            _set(bank, "power_limit_pct", limit_kw / inverter.rated_kw * 100.0)
        for i, pile in enumerate(self.chargers):
            bank = self.servers.bank("chargers", pile.id)
            bank.set("power_kw", state.charger_power_kw[i])
            bank.set("power_limit_kw", self.plant.setpoints.charger_limit_kw[i])
            _set(bank, "connected", 1.0 if inputs.charger_demand_kw[i] > 0 else 0.0)


class SiteSimulator:
    """Every plant and server of a site; step it by hand (tests) or run it in real time."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        profile: Profile | None = None,
        maps_dir: Path | None = None,
        start_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.site = site
        self.servers = SiteServers(site, maps_dir)
        self.plants = [MeterPlant(b, self.servers) for b in site.topology.gateways]
        self.pv_rated_kw = sum(p.rated_kw for p in site.pv)
        self.profile = profile or daily_profile(self.pv_rated_kw)
        self.time_s = start_s
        self.rng = random.Random(seed)  # noqa: S311 (meter noise, not cryptography)
        self.advance(0.0)

    def endpoint(self, section: str, device_id: int) -> EndpointServer:
        """The server of one meter or device: stop, restart or mute it to test D21."""
        return self.servers.endpoints[section, device_id]

    def advance(self, dt_s: float) -> None:
        """Move simulated time by ``dt_s`` and write the new plant state into the registers."""
        self.time_s += dt_s
        world = self.profile(self.time_s)
        for p in self.plants:
            p.step(self.time_s, dt_s, p.inputs(world, self.site), self.rng)

    async def start(self) -> None:
        await self.servers.start()

    async def stop(self) -> None:
        await self.servers.stop()

    async def run(self, *, speed: float = 1.0, step_s: float = 0.1) -> None:
        """Step every ``step_s`` of real time, ``speed`` times faster than real; until cancelled."""
        next_tick = time.monotonic()
        while True:
            next_tick += step_s
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            self.advance(step_s * speed)


def scenario_profile(path: Path) -> Profile:
    """The world from a scenario (TOML + CSV trace, ``gridguard.plant.scenario``), repeated
    after its end. Raises SimulatorError naming the file when it cannot be read."""
    from gridguard.plant.scenario import ScenarioError, load_scenario  # noqa: PLC0415

    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        raise SimulatorError(str(exc)) from exc

    def world(t_s: float) -> World:
        second = int(t_s) % scenario.duration_s
        inputs = scenario.inputs_at(second)
        a, b, c = inputs.load_phase_kw
        vehicles_kw = scenario.charger_kw[second // scenario.step_s]
        return World(
            load_kw=a + b + c,
            pv_available_kw=sum(inputs.pv_available_kw),
            vehicles_plugged=vehicles_kw > 0,
            load_phase_kw=(a, b, c),
            charger_kw=vehicles_kw,
        )

    return world


def _start_of_day_s(site: SiteConfig, start: str | None) -> float:
    """Seconds since midnight: ``HH:MM`` if given, else now in the site's time zone."""
    if start is not None:
        hours, _, minutes = start.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise SimulatorError(f"--start {start!r}: give a time of day as HH:MM")
        return int(hours) * 3600.0 + int(minutes) * 60.0
    from datetime import datetime  # noqa: PLC0415
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    now = datetime.now(ZoneInfo(site.site.time_zone))
    return now.hour * 3600.0 + now.minute * 60.0 + now.second


async def _serve(sim: SiteSimulator, speed: float, out: Callable[[str], None]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or a service manager: stop cleanly
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await sim.start()
    try:
        for line in sim.servers.describe():
            out(f"  {line}")
        out(f"simulating at {speed:g}x real time, step 0.1 s; Ctrl-C stops")
        async with asyncio.TaskGroup() as group:
            steps = group.create_task(sim.run(speed=speed, step_s=0.1), name="sim-steps")
            await stop.wait()
            steps.cancel()
    finally:
        await sim.stop()
        out("simulator stopped, servers closed")


def run_simulator(
    config: Path,
    *,
    scenario: Path | None = None,
    speed: float = 1.0,
    start: str | None = None,
    out: Callable[[str], None] = print,
) -> None:
    """Load the site file, serve every device on loopback and simulate until Ctrl-C.

    Raises ConfigError / MapError / SimulatorError for a file that cannot be served.
    """
    from gridguard.site.config import load_site_config  # noqa: PLC0415

    site = load_site_config(config)
    if scenario is not None:
        profile, start_s = scenario_profile(scenario), 0.0
    else:
        profile, start_s = None, _start_of_day_s(site, start)
    sim = SiteSimulator(site, profile=profile, start_s=start_s)
    out(f"gridguard simulator for {site.device.site_name!r} ({config}):")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: _serve's finally closed the servers
        asyncio.run(_serve(sim, speed, out))
