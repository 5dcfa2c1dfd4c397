"""Calibration to control outlines: one mass-balance parameter per period, found by a bracketed
root finder with step caps.

For each period (1960 -> 1970s spin-up, then 1970s -> 1990 -> 2000 -> 2010 -> 2020) the ELA shift
p (m) is tuned so that the simulated area at the period's end matches the observed outline:

    f(p) = A_sim(p) - A_obs,   A_sim computed as published (bilinear to 25 m, thickness >= 2 m)

f decreases with p (a higher ELA leaves less ice). The search starts from the previous period's p,
takes capped secant steps until the root is bracketed, then Illinois (modified regula falsi)
steps inside the bracket. It aims at |f| <= `aim_pct` % of A_obs (or `aim_pixels` pixels) and
stops there; a fit within `tol_pct` % or `tol_pixels` pixels (the dataset's tolerance) is
"converged". Aiming tighter than the tolerance matters for what follows: area lags climate, so a
period left at the edge of the tolerance hands the next one a glacier out of balance, whose shift
must then jump (and thin the ice) to catch up. After `max_iter` evaluations, or at the parameter
bounds, it keeps the best evaluation and says whether that is within tolerance (status
"converged") or not ("best"), never silently.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..constants import PRODUCT_RESOLUTION_M, REFINE, SPINUP_START, TREND_SPINUP_START

TOL_PCT = 1.0
# ... or one model cell: the product's area lies within the model's ice cells, so it moves by whole
# 100 m cells (16 pixels), 3 % of a 0.35 km2 glacier; a misfit under one cell is the grid's, not the fit's
TOL_PIXELS = REFINE**2
AIM_PCT = 0.25
AIM_PIXELS = 1
MAX_STEP_M = 150.0
FIRST_STEP_M = 60.0
BOUNDS_M = (-600.0, 600.0)
MAX_ITER = 12
LOO_MAX_ITER = 6  # leave-one-out predictions: the figure is the left-out outline's misfit, not this fit
LOO_AIM_PIXELS = 4  # ... so its searches stop within 1 % or 4 pixels
PLAUSIBLE_SHIFT_M = 400.0  # |ELA shift| beyond this (~2.5 K of temperature bias) is flagged
MAX_SHIFT_JUMP_M = 200.0  # a change of shift between consecutive periods beyond this is flagged
# Calibration to a geodetic balance (igm_run/calibrate.py::calibrate_balance)
GEODETIC_TOL_MWE = 0.02  # m w.e. a-1: well inside a geodetic balance's own error (~0.1-0.2 per glacier)
GEODETIC_ERROR_MWE = 0.15  # a geodetic balance's error when its table gives none; missed by more: flagged
GEODETIC_MAX_ITER = 4  # runs beyond the area calibration's
GEODETIC_OUTLINE_SLACK_YEARS = 5  # the gradient factor applies from the outline this near the period's start
GRADIENT_BOUNDS = (0.5, 2.0)  # balance-gradient factor
GRADIENT_PER_MWE = 2.5  # first step: factor change per m w.e. a-1 of misfit (~0.3-0.4 m w.e. a-1 per unit on the twin)
SHIFT_PER_MWE = 200.0  # first step: ELA shift (m) per m w.e. a-1 of misfit (~0.005 m ice a-1 per m of gradient)


@dataclass
class PeriodFit:
    p: float
    area_km2: float
    obs_km2: float
    iterations: int
    status: str  # "converged" | "best"
    result: Any = None
    history: list[tuple[float, float]] = field(default_factory=list)  # (p, area)

    @property
    def rel_diff_pct(self) -> float:
        return 100.0 * (self.area_km2 - self.obs_km2) / self.obs_km2


def converged(area: float, obs: float, tol_pct: float = TOL_PCT, tol_pixels: int = TOL_PIXELS,
              pixel_km2: float = PRODUCT_RESOLUTION_M**2 / 1e6) -> bool:
    return abs(area - obs) <= max(tol_pct / 100.0 * obs, tol_pixels * pixel_km2)


def period_search(
    obs_km2: float,
    p0: float = 0.0,
    tol_pct: float = TOL_PCT,
    tol_pixels: int = TOL_PIXELS,
    max_step: float = MAX_STEP_M,
    first_step: float = FIRST_STEP_M,
    bounds: tuple[float, float] = BOUNDS_M,
    max_iter: int = MAX_ITER,
    aim_pct: float = AIM_PCT,
    aim_pixels: int = AIM_PIXELS,
) -> Generator[float, tuple[float, Any], PeriodFit]:
    """Find p with A(p) ~= obs_km2: yields each p to try and is sent back (area_km2, anything to
    keep) for it (`drive` runs it with a function; a batch of glaciers runs many side by side)."""
    if obs_km2 <= 0:
        raise ValueError("observed area must be positive")
    lo_b, hi_b = bounds
    clamp = lambda p: min(max(p, lo_b), hi_b)  # noqa: E731
    history: list[tuple[float, float]] = []
    best: PeriodFit | None = None
    above = below = None  # (p, f) with f > 0 (too much ice) and f < 0 (too little)
    p = clamp(p0)
    for it in range(1, max_iter + 1):
        area, result = yield p
        f = area - obs_km2
        history.append((p, area))
        if best is None or abs(f) < abs(best.area_km2 - obs_km2):
            best = PeriodFit(p, area, obs_km2, it, "best", result)
        if converged(area, obs_km2, min(aim_pct, tol_pct), min(aim_pixels, tol_pixels)):
            return PeriodFit(p, area, obs_km2, it, "converged", result, history)
        if f > 0 and (above is None or p >= above[0]):
            above = (p, f)
        if f < 0 and (below is None or p <= below[0]):
            below = (p, f)
        if above is not None and below is not None:
            (pa, fa), (pb, fb) = above, below
            nxt = pa - fa * (pb - pa) / (fb - fa)  # regula falsi inside the bracket
            # Illinois: halve the weight of the end that stayed put twice
            if len(history) >= 3 and (history[-2][1] - obs_km2) * f > 0:
                if f > 0:
                    nxt = pa - (fa) * (pb - pa) / (fb / 2 - fa)
                else:
                    nxt = pa - (fa / 2) * (pb - pa) / (fb - fa / 2)
            step = nxt - p
        else:
            # no bracket yet: secant from the last two points (if f falls with p), else a first step
            step = first_step if f > 0 else -first_step
            if len(history) >= 2:
                (p1, a1), (p2, a2) = history[-2], history[-1]
                if p2 != p1 and (a2 - a1) / (p2 - p1) < 0:
                    step = -f * (p2 - p1) / (a2 - a1)
        step = max(-max_step, min(max_step, step))
        nxt = clamp(p + step)
        if nxt == p:  # at a bound and still on the same side: cannot do better
            break
        p = nxt
    assert best is not None
    best.history = history
    best.iterations = len(history)
    if converged(best.area_km2, obs_km2, tol_pct, tol_pixels):
        best.status = "converged"
    return best


_Yield = TypeVar("_Yield")
_Send = TypeVar("_Send")
_Return = TypeVar("_Return")


def drive(search: Generator[_Yield, _Send, _Return], evaluate: Callable[[_Yield], _Send]) -> _Return:
    """Run a search generator to its end, answering each value it yields with `evaluate(value)`;
    returns what the generator returns."""
    try:
        value = next(search)
        while True:
            value = search.send(evaluate(value))
    except StopIteration as done:
        return done.value


def solve_period(evaluate: Callable[[float], tuple[float, Any]], obs_km2: float, **options) -> PeriodFit:
    """`period_search` with `evaluate(p)` returning (area_km2, anything to keep)."""
    return drive(period_search(obs_km2, **options), evaluate)


@dataclass
class ScalarFit:
    x: float
    value: float
    target: float
    iterations: int
    status: str  # "converged" | "best"
    result: Any = None
    history: list[tuple[float, float]] = field(default_factory=list)  # (x, value)


def scalar_search(
    target: float,
    x0: float,
    x1: float,
    tol: float,
    bounds: tuple[float, float],
    max_step: float,
    max_iter: int,
    known: tuple[float, float, Any] | None = None,
) -> Generator[float, tuple[float, Any], ScalarFit]:
    """x whose value (sent back for each x yielded, with anything to keep) is within `tol` of
    `target`, for a function monotonic in x whose direction is not known beforehand: secant steps
    (capped at `max_step`) from x0 and x1 until two values straddle the target, then regula falsi
    between the nearest such pair. `known` is an evaluation (x0, value, result) already made. After
    `max_iter` new evaluations, or when a step would repeat a point, the best one is kept with
    status "best"."""
    lo_b, hi_b = bounds
    points: list[tuple[float, float, Any]] = [known] if known is not None else []
    if not points:
        points.append((x0, *(yield x0)))

    def fit(status: str) -> ScalarFit:
        x, v, r = min(points, key=lambda q: abs(q[1] - target))
        return ScalarFit(x, v, target, len(points), status, r, [(q[0], q[1]) for q in points])

    x = x1
    for _ in range(max_iter):
        if abs(points[-1][1] - target) <= tol:
            return fit("converged")
        x = min(max(x, lo_b), hi_b)
        if any(abs(x - q[0]) < 1e-9 for q in points):
            break
        points.append((x, *(yield x)))
        if abs(points[-1][1] - target) <= tol:
            return fit("converged")
        pairs = [(a, b) for i, a in enumerate(points) for b in points[i + 1:] if (a[1] - target) * (b[1] - target) < 0]
        if pairs:  # bracketed: regula falsi between the closest straddling pair
            a, b = min(pairs, key=lambda ab: abs(ab[0][0] - ab[1][0]))
            nxt = a[0] - (a[1] - target) * (b[0] - a[0]) / (b[1] - a[1])
        else:  # secant through the last two
            (xa, va, _), (xb, vb, _) = points[-2], points[-1]
            nxt = xb + (max_step if xb >= xa else -max_step) if vb == va else xb - (vb - target) * (xb - xa) / (vb - va)
        x = points[-1][0] + max(-max_step, min(max_step, nxt - points[-1][0]))
    best = fit("best")
    if abs(best.value - target) <= tol:
        best.status = "converged"
    return best


def solve_scalar(evaluate: Callable[[float], tuple[float, Any]], target: float, *args, **options) -> ScalarFit:
    """`scalar_search` with `evaluate(x)` returning (value, anything to keep)."""
    return drive(scalar_search(target, *args, **options), evaluate)


def gradient_period(outline_times: list[int], start: int) -> int | None:
    """The calibration period (0: the spin-up to the first outline) from whose start a balance
    period beginning in `start` gets its gradient factor: the first that starts at an outline at or
    after `start` (within `GEODETIC_OUTLINE_SLACK_YEARS`); None if none does. `outline_times`:
    the model times of the glacier's outlines, ascending (period k starts at outline k - 1)."""
    return next((k for k in range(1, len(outline_times))
                 if outline_times[k - 1] >= start - GEODETIC_OUTLINE_SLACK_YEARS), None)


def geodetic_parameter(outline_times: list[int], start: int, end: int) -> str:
    """What the geodetic calibration solves for a balance period `start`-`end`, given the model
    times of a glacier's outlines (ascending; the first ends the spin-up period):
    `spinup_offset_m` if most of the period lies before the first outline, else
    `balance_gradient_factor` if a period starts at an outline at or after the period's start
    (`gradient_period`), else `tail_shift_m` (the shift after the last outline)."""
    if 2 * (outline_times[0] - start) >= end - start:
        return "spinup_offset_m"
    if gradient_period(outline_times, start) is not None:
        return "balance_gradient_factor"
    return "tail_shift_m"


def spinup_start(targets, geodetic: dict | None) -> int:
    """The year a glacier's spin-up starts, given the model times of its outlines (`targets`, any
    order) and its balance period: `TREND_SPINUP_START` when the period lies mostly before the first
    outline after `SPINUP_START` (`geodetic_parameter`: "spinup_offset_m"), else `SPINUP_START`.
    The run (`igm_run/calibrate.py: glacier_runs`) and the simulation's fingerprint both ask here."""
    times = sorted(int(t) for t in targets if int(t) > SPINUP_START)
    if geodetic and times and geodetic_parameter(times, int(geodetic["start"]), int(geodetic["end"])) \
            == "spinup_offset_m":
        return TREND_SPINUP_START
    return SPINUP_START
