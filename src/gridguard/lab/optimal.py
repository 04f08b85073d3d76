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
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, diags, eye, hstack, vstack

from gridguard.plant.model import StorageParams


def _window_max_kw(grid_kw: np.ndarray, window_min: int) -> float:
    return float(np.convolve(grid_kw, np.ones(window_min) / window_min, "valid").max())


def optimal_max_demand_kw(
    net_load_kw: np.ndarray,
    pv_kw: np.ndarray,
    storage: StorageParams | None,
    *,
    soc_pct: float,
    baseline_kw: float,
    window_min: int = 15,
) -> float:
    """Least achievable max demand in kW for per-minute ``net_load_kw`` (load including
    vehicles) and available ``pv_kw``; ``baseline_kw`` is the anti-backflow floor."""
    n = len(net_load_kw)
    floor = max(baseline_kw, 0.0)
    if storage is None or n < window_min:
        return _window_max_kw(np.maximum(net_load_kw - pv_kw, floor), window_min)
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
    base = net_load_kw - pv_kw
    csum = np.concatenate([[0.0], np.cumsum(base)])
    b_ub = np.concatenate([base - floor, -(csum[window_min:] - csum[:-window_min])])
    bounds = (
        [(0.0, storage.power_kw)] * (2 * n)
        + [(0.0, float(p)) for p in pv_kw]
        + [(storage.soc_min_pct * per_pct, storage.soc_max_pct * per_pct)] * n
        + [(0.0, None)]
    )
    cost = np.zeros(4 * n + 1)
    cost[-1] = 1.0
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
    return float(result.x[-1])


def minute_means(per_second: np.ndarray) -> np.ndarray:
    """1-minute averages of a per-second series (a trailing partial minute is dropped)."""
    n = len(per_second) // 60
    return np.asarray(per_second[: n * 60].reshape(n, 60).mean(axis=1))
