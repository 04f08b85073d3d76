"""Charging-pile setpoints for over-demand (D17): throttle by priority, release the same way.

Throttling first stops any rise still pending (limit = present draw), then takes every pile
down to its configured minimum, lowest priority first, and only then pauses piles, lowest
priority first: a high-priority car keeps charging at its minimum while a low-priority one
is paused. Releasing goes the other way, highest priority first, raising limits by the
release; a paused pile resumes only when the release covers its minimum. Limits are in kW,
0..rated, and never between 0 and ``min_kw`` (that would pause a pile by accident).
"""

from __future__ import annotations

from gridguard.control.dispatch.merit import Plan, Spans
from gridguard.control.dispatch.owed import Owed
from gridguard.control.dispatch.split import releasable
from gridguard.control.params import MeterGoals
from gridguard.control.view import MeterRatings, MeterView


def _throttle(
    view: MeterView, ratings: MeterRatings, plan: Plan, spans: Spans
) -> list[float | None]:
    alpha = spans.alpha
    out: list[float | None] = []
    for r, c in zip(view.chargers, ratings.chargers, strict=True):
        frozen = max(c.min_kw, r.power_kw) if r.power_kw > 0.0 else r.limit_kw
        out.append(frozen if r.online else None)
    order = sorted(range(len(view.chargers)), key=lambda i: ratings.chargers[i].priority)
    left = plan.charger_cut_kw - spans.charger_pending_kw
    for i in order:  # phase 1: down to the minimum
        r, c = view.chargers[i], ratings.chargers[i]
        room = alpha * max(0.0, r.power_kw - c.min_kw)
        if not r.online or left <= 0.0 or room <= 0.0:
            continue
        take = min(left, room)
        out[i] = max(c.min_kw, r.power_kw - take / alpha)
        left -= take
    for i in order:  # phase 2: pause
        r = view.chargers[i]
        if not r.online or left <= 0.0 or r.power_kw <= 0.0:
            continue
        next_kw = r.power_kw + alpha * ((out[i] or 0.0) - r.power_kw)
        out[i] = 0.0
        left -= next_kw - r.power_kw * (1.0 - alpha)
    return out


def _release(
    view: MeterView, ratings: MeterRatings, rel_kw: float, ramp_kw: float, owed: Owed | None
) -> list[float | None]:
    owed_kw = owed.charger_kw if owed else (0.0,) * len(view.chargers)

    def held(i: int) -> bool:
        r, c = view.chargers[i], ratings.chargers[i]
        paused = r.limit_kw < c.min_kw
        return r.connected and (
            paused or releasable(r.power_kw, r.limit_kw, c.rated_kw, ramp_kw, owed_kw[i])
        )

    out: list[float | None] = []
    for i, (r, c) in enumerate(zip(view.chargers, ratings.chargers, strict=True)):
        if not r.online:
            out.append(None)
        elif not r.connected or r.limit_kw >= c.rated_kw:
            out.append(c.rated_kw)
        else:
            out.append(max(r.limit_kw, r.power_kw) if held(i) else c.rated_kw)
    order = sorted(range(len(view.chargers)), key=lambda i: -ratings.chargers[i].priority)
    left = rel_kw
    for i in order:
        r, c = view.chargers[i], ratings.chargers[i]
        if left <= 0.0 or not r.online or not held(i):
            continue
        if r.limit_kw < c.min_kw:  # paused: resumes at its minimum, or not at all
            if left >= c.min_kw:
                out[i] = c.min_kw
                left -= c.min_kw
            continue
        base = max(r.limit_kw, r.power_kw)
        give = min(left, c.rated_kw - base)
        out[i] = base + give
        left -= give
    return out


def charger_commands(
    view: MeterView,
    ratings: MeterRatings,
    goals: MeterGoals,
    plan: Plan,
    *,
    spans: Spans,
    ramp_kw: float,
    owed: Owed | None = None,
) -> list[float | None]:
    """Pile limits for the plan: rated when piles have no over-demand goal."""
    if not goals.charger_hi:
        return [
            c.rated_kw if r.online else None
            for r, c in zip(view.chargers, ratings.chargers, strict=True)
        ]
    if plan.charger_cut_kw > 0.0:
        return _throttle(view, ratings, plan, spans)
    return _release(view, ratings, plan.charger_release_kw, ramp_kw, owed)
