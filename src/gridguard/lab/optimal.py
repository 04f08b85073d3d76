"""The lowest achievable maximum demand, by a perfect-foresight linear program (HiGHS).

Used by the bench only, as the yardstick the controller is measured against: given the whole
load and PV trace (1-minute averages) and the battery, what is the least monthly maximum of
the sliding-window demand any controller could reach? Variables per minute t: charge c and
discharge d (kW AC), PV curtailment u (kW), stored energy e (kWh, in the cells); plus the
maximum demand D. Grid import is g = net_load - pv + u + c - d.

    minimise D
    e[t] = e[t-1] + (eta c[t] - d[t] / eta) / 60        battery, eta = sqrt(round trip)
    g[t] >= max(baseline, 0)                              no export below the baseline (D15)
    sum of g over each sliding window / window <= D       demand (D17), stepped each minute
    0 <= c, d <= power; 0 <= u <= pv; e within the SOC window
    g_phase[t] >= phase condition (storage and PV spread over the phases equally)

The same LP with D capped at max(optimum, limit) and the curtailment as objective gives the
*necessary* curtailment: what no controller could have avoided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, diags, eye, hstack, vstack

from gridguard.plant.model import StorageParams


def _window_max_kw(grid_kw: np.ndarray, window_min: int) -> float:
    return float(np.convolve(grid_kw, np.ones(window_min) / window_min, "valid").max())


@dataclass(frozen=True, slots=True)
class Trace:
    """Per-minute inputs of the LPs: load (incl. vehicles), available PV, and the lowest
    phase's load (for a per-phase floor)."""

    net_load_kw: np.ndarray
    pv_kw: np.ndarray
    min_phase_kw: np.ndarray | None = None


def _lp(
    trace: Trace,
    storage: StorageParams,
    *,
    soc_pct: float,
    floor_kw: float,
    phase_kw: float | None,
    window_min: int,
    demand_cap_kw: float | None,
) -> np.ndarray:
    """Variables [c, d, u, e, D]; minimise D, or (with ``demand_cap_kw``) the curtailment."""
    load, pv = trace.net_load_kw, trace.pv_kw
    n = len(load)
    window_min = min(window_min, n)  # a trace shorter than one window: its whole average
    eta = math.sqrt(storage.efficiency)
    per_pct = storage.energy_kwh / 100.0
    ident = eye(n, format="csr")
    zero = csr_matrix((n, n))
    no_d = csr_matrix((n, 1))
    chain = diags([1.0, -1.0], [0, -1], shape=(n, n), format="csr")
    a_eq = hstack([-eta / 60.0 * ident, 1.0 / (eta * 60.0) * ident, zero, chain, no_d])
    b_eq = np.zeros(n)
    b_eq[0] = soc_pct * per_pct
    k = n - window_min + 1
    band = diags([np.ones(k)] * window_min, list(range(window_min)), shape=(k, n), format="csr")
    a_win = hstack([band, -band, band, csr_matrix((k, n)), -window_min * np.ones((k, 1))])
    a_floor = hstack([-ident, ident, -ident, zero, no_d])
    base = load - pv
    room = base - floor_kw  # d - c - u <= import above the floor
    if phase_kw is not None and trace.min_phase_kw is not None:
        room = np.minimum(room, 3.0 * (trace.min_phase_kw - phase_kw) - pv)
    csum = np.concatenate([[0.0], np.cumsum(base)])
    b_ub = np.concatenate([room, -(csum[window_min:] - csum[:-window_min])])
    bounds = (
        [(0.0, storage.power_kw)] * (2 * n)
        + [(0.0, float(v)) for v in pv]
        + [(storage.soc_min_pct * per_pct, storage.soc_max_pct * per_pct)] * n
        + [(0.0, None if demand_cap_kw is None else demand_cap_kw)]
    )
    cost = np.zeros(4 * n + 1)
    if demand_cap_kw is None:
        cost[-1] = 1.0
    else:
        cost[2 * n : 3 * n] = 1.0 / 60.0
    result = linprog(
        cost,
        A_ub=vstack([a_floor, a_win]).tocsr(),
        b_ub=b_ub,
        A_eq=a_eq.tocsr(),
        b_eq=b_eq,
        bounds=bounds,
        method="highs-ds",
    )
    if not result.success:
        raise RuntimeError(f"optimum not found: {result.message}")
    return np.asarray(result.x)


def optimal_max_demand_kw(
    net_load_kw: np.ndarray,
    pv_kw: np.ndarray,
    storage: StorageParams | None,
    *,
    soc_pct: float,
    baseline_kw: float,
    window_min: int = 15,
    min_phase_kw: np.ndarray | None = None,
    phase_kw: float | None = None,
) -> float:
    """Least achievable max demand in kW for per-minute ``net_load_kw`` (load including
    vehicles) and available ``pv_kw``; ``baseline_kw`` is the anti-backflow floor, and
    ``phase_kw`` (with ``min_phase_kw``, the lowest phase's load) the per-phase floor."""
    floor = max(baseline_kw, 0.0)
    if storage is None or len(net_load_kw) < window_min:
        return _window_max_kw(np.maximum(net_load_kw - pv_kw, floor), window_min)
    trace = Trace(net_load_kw, pv_kw, min_phase_kw)
    x = _lp(
        trace,
        storage,
        soc_pct=soc_pct,
        floor_kw=floor,
        phase_kw=phase_kw,
        window_min=window_min,
        demand_cap_kw=None,
    )
    return float(x[-1])


def necessary_curtailment_kwh(
    trace: Trace,
    storage: StorageParams | None,
    *,
    soc_pct: float,
    baseline_kw: float | None,
    phase_kw: float | None,
    demand_cap_kw: float,
    window_min: int = 15,
) -> float:
    """Least PV energy any controller must curtail with perfect foresight: import >= the
    baseline, each phase >= its condition, demand <= ``demand_cap_kw``, the battery's limits.
    Without anti-backflow nothing needs curtailing."""
    if baseline_kw is None and phase_kw is None:
        return 0.0
    floor = -math.inf if baseline_kw is None else baseline_kw
    if storage is None:
        storage = StorageParams(0.0, 0.0, 0.0, 0.0, 1.0)
    x = _lp(
        trace,
        storage,
        soc_pct=soc_pct,
        floor_kw=floor,
        phase_kw=phase_kw,
        window_min=window_min,
        demand_cap_kw=demand_cap_kw,
    )
    n = len(trace.net_load_kw)
    return float(x[2 * n : 3 * n].sum() / 60.0)


def minute_means(per_second: np.ndarray) -> np.ndarray:
    """1-minute averages of a per-second series (a trailing partial minute is dropped)."""
    n = len(per_second) // 60
    return np.asarray(per_second[: n * 60].reshape(n, 60).mean(axis=1))
