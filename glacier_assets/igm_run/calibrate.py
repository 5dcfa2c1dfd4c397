"""The calibration of one glacier's simulation, as generators of model runs: the ELA shift of each
period to its outline, the geodetic balance, the leave-one-out validation (docs/calibration.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..constants import (
    END_YEAR,
    OUTLINE_TIME_OFFSET_YEARS,
    SPINUP_START,
)
from ..science.calibration import (
    BOUNDS_M,
    GEODETIC_ERROR_MWE,
    GEODETIC_MAX_ITER,
    GEODETIC_TOL_MWE,
    GRADIENT_BOUNDS,
    GRADIENT_PER_MWE,
    LOO_AIM_PIXELS,
    LOO_MAX_ITER,
    MAX_SHIFT_JUMP_M,
    MAX_STEP_M,
    PLAUSIBLE_SHIFT_M,
    SHIFT_PER_MWE,
    TOL_PCT,
    geodetic_parameter,
    gradient_period,
    period_search,
    scalar_search,
    spinup_start,
)
from ..science.masks import volume_km3
from ..science.resample import product_area_km2
from ..science.skill import series_geodetic_balance
from .processes import NO_GRADIENT, TileRun
from .settings import Log


@dataclass
class Period:
    start: int
    end: int
    thk0: np.ndarray | None  # None: the domain's initial ice (the spin-up)
    flow: list | None  # the flow state at the period's start (None: the model's initial one)
    d_ela: float = 0.0


@dataclass
class Calibration:
    saved: dict  # model time -> thickness (north-up)
    series: dict  # year -> (volume km3, area km2)
    rows: list  # one per outline (the calibration report's)
    periods: list  # Period per outline
    tail_flow: list | None  # the flow state after the last outline
    gradient: tuple = NO_GRADIENT  # the balance-gradient factor and the year it applies from
    spinup_offset: float = 0.0  # the spin-up's ELA shifted this much more, on average (massbalance.spinup_shift)
    spinup_start: int = SPINUP_START  # the year the spin-up starts from the first guess


# The calibration is written as generators of model runs: each yields a `TileRun` and is sent back
# its result (`IGMBatch.run_tiles`: the kept thickness by year, the (volume, area) series by year,
# the flow state after). `run_alone` answers them one by one with a glacier's own model;
# `run_packed` answers many glaciers' at once, one batch run per round (igm_run/batch.py). One
# implementation, two ways to run it.


def _search(search, trial):
    """Drive a search generator (`science.calibration.period_search`, `scalar_search`) whose
    every trial is itself a generator of runs: `trial(x)` yields runs and returns (value, kept)."""
    try:
        x = next(search)
        while True:
            x = search.send((yield from trial(x)))
    except StopIteration as done:
        return done.value


def calibrate_outlines(gid: str, targets: dict[int, float], res: float, first_shift: float, log: Log,
                       first: int = 0, before: Calibration | None = None, gradient: tuple = NO_GRADIENT,
                       guess: list[float] | None = None, spinup_offset: float = 0.0,
                       spinup_start: int = SPINUP_START):
    """Period by period, the ELA shift that makes the simulated area at each outline's model time
    (its year + 1) match the outline. The first period is the spin-up: from the first guess in
    `spinup_start` under the spin-up climate (its first trial `first_shift`), then the
    forcing, to the first outline; each later period starts from the end state of the one before,
    and its search from the shift before (so of the shifts within tolerance the one nearest the last
    is kept). Every trial of a period starts from the flow state at the period's start, so
    each trial is the same function of the shift. With `before` (an earlier calibration) only the
    periods from the `first` on are solved again, from that calibration's state there, each search
    from `guess` (a shift per period) or else that calibration's shift. `spinup_offset` shifts the
    spin-up climate's ELA further (before 1960 only, as a trend: `massbalance.spinup_shift`). A
    generator of runs that returns the `Calibration`."""
    times = sorted(t for t in targets if t > SPINUP_START)
    if before is None or first == 0:
        saved_all, series_all, rows, periods = {}, {}, [], []
        thk, start, p_prev, flow = None, spinup_start, first_shift, None  # without `guess`: from the shift before
    else:
        start = before.periods[first].start
        saved_all = {t: v for t, v in before.saved.items() if t <= start}
        series_all = {t: v for t, v in before.series.items() if t <= start}
        rows, periods = list(before.rows[:first]), list(before.periods[:first])
        thk, p_prev, flow = before.periods[first].thk0, before.periods[first - 1].d_ela, before.periods[first].flow
        guess = guess or [q.d_ela for q in before.periods]
    for end in times[first:]:
        obs = targets[end]
        p0 = guess[len(periods)] if guess else p_prev
        period = Period(start, end, thk, flow)
        counter = iter(range(1, 1000))

        def trial(p: float, period=period, obs=obs, counter=counter):
            saved, series, end_flow = yield TileRun(period.start, period.end, period.thk0, p, tuple(times),
                                                       period.flow, gradient, spinup_offset)
            area = product_area_km2(saved[period.end], res)
            log(f"{gid}: calibrating {period.start}-{period.end}, trial {next(counter)}: d_ela {p:+.1f} m -> "
                f"area {area:.4f} km2 (observed {obs:.4f})")
            return area, (saved, end_flow, series)

        fit = yield from _search(period_search(obs, p0=p0), trial)
        saved, flow, series = fit.result
        series_all.update(series)
        period.d_ela = fit.p
        periods.append(period)
        saved_all.update(saved)
        rows.append({"time": end, "obs_year": end - OUTLINE_TIME_OFFSET_YEARS, "start": start,
                     "spinup": start == spinup_start, "d_ela_m": round(fit.p, 2), "sim_area_km2": fit.area_km2,
                     "obs_area_km2": obs, "rel_diff_pct": fit.rel_diff_pct, "iterations": fit.iterations,
                     "status": fit.status, "shift_flag": shift_flag(fit.p, None if start == spinup_start else p_prev),
                     "volume_km3": volume_km3(saved[end], res * res),
                     "trials": [[round(p, 2), round(a, 5)] for p, a in fit.history]})
        log(f"{gid}: {start}-{end} d_ela {fit.p:+.1f} m, area {fit.area_km2:.4f} vs {obs:.4f} km2 "
            f"({fit.rel_diff_pct:+.2f} %), {fit.iterations} runs, {fit.status}")
        thk, start, p_prev = saved[end], end, fit.p
    if start < END_YEAR:  # after the last outline: the last shift carries on
        saved, series, _ = yield TileRun(start, END_YEAR, thk, p_prev, (), flow, gradient, spinup_offset)
        saved_all.update(saved)
        series_all.update(series)
        log(f"{gid}: {start}-{END_YEAR} continued with d_ela {p_prev:+.1f} m (no later outline)")
    return Calibration(saved_all, series_all, rows, periods, flow, gradient, spinup_offset, spinup_start)


def calibrate_balance(gid: str, targets: dict[int, float], res: float, cal: Calibration, geodetic: dict, log: Log):
    """Make the simulated balance of the geodetic period match the geodetic one, the area still
    matching every outline. Three cases (`geodetic_parameter`):

    * a period mostly before the first outline (e.g. a glaciological record 1960-2003 and one 2003
      outline): the spin-up's ELA offset, with the shifts of every period solved again for each
      offset. It sets how far out of balance the 1960 glacier is, which the area at a later outline
      leaves free (like OGGM's dynamic spin-up: a bias over the spin-up years, found with the mass
      balance and the area together);
    * outlines from the period's start on (a glacier with a later outline): the balance-gradient
      factor g (b = g b(z - d_ela), the ELA kept) applies from the outline nearest the period's
      start, and the shifts of the periods after it are solved again for each g. g decides how a
      glacier trades thinning for retreat, which area alone leaves free;
    * no outline after the period's start (e.g. one RGI outline): the shift after the last outline,
      which no outline constrains, is solved instead of carried on.

    A generator of runs that returns (the calibration, a record of what was found)."""
    start, end, ref = int(geodetic["start"]), int(geodetic["end"]), float(geodetic["mwe"])
    mb0 = series_geodetic_balance(cal.series, start, end)
    if not np.isfinite(mb0):
        return cal, {"status": f"not calibrated: the geodetic period {start}-{end} is outside the simulation"}
    missed = [r["obs_year"] for r in cal.rows if r["status"] != "converged"]
    if missed:  # the outlines come first: a balance fitted on top of missed areas would mean nothing
        return cal, {"status": f"not calibrated: the outline(s) of {', '.join(map(str, missed))} were missed"}
    outline_times = [p.end for p in cal.periods]
    case = geodetic_parameter(outline_times, start, end)
    trial: Callable[[float], Any]  # a generator of runs that returns (balance, calibration)
    if case == "spinup_offset_m":
        param, from_year = case, cal.spinup_start
        tried_offsets: list[tuple[float, list[float]]] = [(cal.spinup_offset, [q.d_ela for q in cal.periods])]

        def spinup_trial(offset: float):
            new = yield from calibrate_outlines(gid, targets, res, cal.periods[0].d_ela, log, before=cal,
                                                gradient=cal.gradient, guess=shifts_guess(tried_offsets, offset),
                                                spinup_offset=offset, spinup_start=cal.spinup_start)
            tried_offsets.append((offset, [q.d_ela for q in new.periods]))
            mb = series_geodetic_balance(new.series, start, end)
            log(f"{gid}: geodetic calibration: spin-up offset {offset:+.1f} m -> balance {start}-{end} "
                f"{mb:+.3f} m w.e./a (geodetic {ref:+.3f})")
            return mb, new

        trial = spinup_trial  # a colder spin-up (offset < 0) leaves a larger glacier to lose more mass
        x0 = cal.spinup_offset
        x1, bounds, step = x0 + (ref - mb0) * SHIFT_PER_MWE, BOUNDS_M, MAX_STEP_M
    elif case == "balance_gradient_factor":
        first = gradient_period(outline_times, start)
        assert first is not None  # what makes the case
        param, from_year = "balance_gradient_factor", cal.periods[first].start

        tried: list[tuple[float, list[float]]] = [(1.0, [q.d_ela for q in cal.periods])]  # (g, shifts)

        def gradient_trial(g: float):
            new = yield from calibrate_outlines(gid, targets, res, 0.0, log, first=first, before=cal,
                                                gradient=(g, from_year), guess=shifts_guess(tried, g))
            tried.append((g, [q.d_ela for q in new.periods]))
            mb = series_geodetic_balance(new.series, start, end)
            log(f"{gid}: geodetic calibration: gradient factor {g:.3f} from {from_year} -> balance {start}-{end} "
                f"{mb:+.3f} m w.e./a (geodetic {ref:+.3f})")
            return mb, new

        trial = gradient_trial
        x0, x1, bounds, step = 1.0, 1.0 + float(np.clip((ref - mb0) * GRADIENT_PER_MWE, -0.3, 0.3)), \
            GRADIENT_BOUNDS, 0.3
    else:
        param, last = "tail_shift_m", cal.periods[-1]
        p_last, from_year, thk_last = last.d_ela, last.end, cal.saved.get(last.end)
        if from_year >= END_YEAR or thk_last is None:
            return cal, {"status": "not calibrated: no year after the last outline to calibrate"}

        def shift_trial(p: float):
            saved, series, _ = yield TileRun(from_year, END_YEAR, thk_last, p, (), cal.tail_flow, cal.gradient)
            series = {**{t: v for t, v in cal.series.items() if t <= from_year}, **series}
            new = replace(cal, saved={**{t: v for t, v in cal.saved.items() if t <= from_year}, **saved},
                          series=series)
            mb = series_geodetic_balance(series, start, end)
            log(f"{gid}: geodetic calibration: shift after {from_year} {p:+.1f} m -> balance {start}-{end} "
                f"{mb:+.3f} m w.e./a (geodetic {ref:+.3f})")
            return mb, new

        trial = shift_trial
        x0, x1, bounds, step = p_last, p_last - (ref - mb0) * SHIFT_PER_MWE, BOUNDS_M, MAX_STEP_M
    fit = yield from _search(scalar_search(ref, x0, x1, GEODETIC_TOL_MWE, bounds, step, GEODETIC_MAX_ITER,
                                           known=(x0, mb0, cal)), trial)
    record = {"parameter": param, "value": round(fit.x, 4), "from_year": int(from_year),
              "start": start, "end": end, "geodetic_mwe": ref, "simulated_mwe": round(fit.value, 4),
              "uncalibrated_mwe": round(mb0, 4), "runs": fit.iterations - 1, "status": fit.status,
              "trials": [[round(x, 4), round(v, 4)] for x, v in fit.history]}
    err = float(geodetic.get("err") or GEODETIC_ERROR_MWE)
    if abs(fit.value - ref) > err:
        record["flag"] = (f"geodetic balance missed ({fit.value:+.3f} vs {ref:+.3f} +- {err:.2f} m w.e./a, "
                          f"{param} {fit.x:.3g})")
    log(f"{gid}: geodetic calibration {fit.status}: {param} {fit.x:.3f}, balance {start}-{end} {fit.value:+.3f} "
        f"m w.e./a vs geodetic {ref:+.3f} (uncalibrated {mb0:+.3f})")
    return fit.result, record


def left_out_predictions(gid: str, targets: dict[int, float], res: float, cal: Calibration, log: Log):
    """For each outline, the area the model predicts for it when calibrated without it: the
    period it ends is merged with the next one and one shift is solved for the next outline (the
    first outline: the spin-up lands on the second one), from the two periods' shifts weighted by
    their lengths (`merged_shift`); the last outline is predicted by carrying
    the shift before it on, as the model does after its last outline. Each figure is out of sample.
    A generator of runs that returns the rows."""
    periods = cal.periods
    out: list[dict] = []
    if len(periods) < 2:
        return out
    for k, period in enumerate(periods):
        t_obs, obs = period.end, targets[period.end]
        if k + 1 < len(periods):
            nxt = periods[k + 1]

            def trial(p: float, period=period, nxt=nxt, t_obs=t_obs):
                saved, _, _ = yield TileRun(period.start, nxt.end, period.thk0, p, (t_obs,), period.flow,
                                            cal.gradient, cal.spinup_offset)
                return product_area_km2(saved[nxt.end], res), saved

            p0 = merged_shift(period, nxt)
            fit = yield from _search(period_search(targets[nxt.end], p0=p0, max_iter=LOO_MAX_ITER,
                                                   aim_pct=TOL_PCT, aim_pixels=LOO_AIM_PIXELS), trial)
            saved, how, shift = fit.result, f"calibrated to the {nxt.end - OUTLINE_TIME_OFFSET_YEARS} outline", fit.p
        else:
            shift = periods[k - 1].d_ela
            saved, _, _ = yield TileRun(period.start, t_obs, period.thk0, shift, (), period.flow, cal.gradient,
                                        cal.spinup_offset)
            how = "the shift before it carried on"
        area = product_area_km2(saved[t_obs], res)
        out.append({"obs_year": t_obs - OUTLINE_TIME_OFFSET_YEARS, "time": t_obs, "obs_area_km2": obs,
                    "predicted_area_km2": area, "rel_diff_pct": 100.0 * (area - obs) / obs, "d_ela_m": round(shift, 2),
                    "predicted_volume_km3": volume_km3(saved[t_obs], res * res), "how": how})
        log(f"{gid}: left out the {t_obs - OUTLINE_TIME_OFFSET_YEARS} outline ({how}): predicted {area:.4f} km2 "
            f"vs {obs:.4f} observed ({out[-1]['rel_diff_pct']:+.2f} %)")
    return out


def shifts_guess(tried: list[tuple[float, list[float]]], g: float) -> list[float]:
    """Each period's shift expected at parameter `g` (a gradient factor, a spin-up offset) from
    the values tried so far, (g, shifts) pairs: the line through the two nearest, or the one tried.
    A nested search started there needs fewer runs than one started from the uncalibrated shifts."""
    near = sorted(tried, key=lambda t: abs(t[0] - g))[:2]
    if len(near) < 2 or near[0][0] == near[1][0]:
        return list(near[0][1])
    (g0, s0), (g1, s1) = near
    return [a + (b - a) * (g - g0) / (g1 - g0) for a, b in zip(s0, s1, strict=True)]


def merged_shift(period: Period, nxt: Period) -> float:
    """The first guess of one shift for two consecutive periods run as one: their shifts weighted
    by their lengths (on the demo twin ~17 m rms from the solution, the later period's ~65 m)."""
    a, b = period.end - period.start, nxt.end - nxt.start
    return (period.d_ela * a + nxt.d_ela * b) / (a + b)


MODEL_YEAR_PHASES = ("spinup", "outlines", "geodetic", "validation")


def glacier_runs(gid: str, targets: dict[int, float], res: float, first_shift: float, log: Log,
                 geodetic: dict | None = None, leave_one_out: bool = True, years: dict | None = None):
    """Everything one glacier's simulation needs, as a generator of runs: the calibration to its
    outlines, to its geodetic balance if it has one, the leave-one-out validation; returns
    (calibration, geodetic record, validation rows). `years` (if given) is filled with the model
    years each phase ran (`MODEL_YEAR_PHASES`): what a calibrated glacier costs, start-up aside."""
    years = {} if years is None else years
    start = spinup_start(targets, geodetic)
    cal = yield from _counted(calibrate_outlines(gid, targets, res, first_shift, log, spinup_start=start), years,
                              lambda run: "spinup" if run.start == start else "outlines")
    fit: dict = {}
    if geodetic:
        cal, fit = yield from _counted(calibrate_balance(gid, targets, res, cal, geodetic, log), years,
                                       lambda run: "geodetic")
    validation = (yield from _counted(left_out_predictions(gid, targets, res, cal, log), years,
                                      lambda run: "validation")) if leave_one_out else []
    return cal, fit, validation


def _counted(runs, years: dict, phase: Callable[[TileRun], str]):
    """A generator of runs passed through, each run's model years added to `years[phase(run)]`."""
    try:
        run = next(runs)
        while True:
            key = phase(run)
            years[key] = years.get(key, 0) + int(round(run.end - run.start))
            run = runs.send((yield run))
    except StopIteration as done:
        return done.value


def model_year_figures(years: dict) -> dict:
    """The model years by phase as flat figures (NetCDF attributes, Dagster metadata)."""
    return {"model_years": int(sum(years.values())),
            **{f"model_years_{p}": int(years.get(p, 0)) for p in MODEL_YEAR_PHASES}}


def shift_flag(p: float, p_before: float | None) -> str:
    """"" for a physically plausible ELA shift, else why not: beyond +-PLAUSIBLE_SHIFT_M (~2.5 K of
    temperature bias at 6.5 K/km) or a jump from the period before beyond MAX_SHIFT_JUMP_M."""
    why = []
    if abs(p) > PLAUSIBLE_SHIFT_M:
        why.append(f"shift {p:+.0f} m beyond +-{PLAUSIBLE_SHIFT_M:.0f} m")
    if p_before is not None and abs(p - p_before) > MAX_SHIFT_JUMP_M:
        why.append(f"jump {p - p_before:+.0f} m beyond +-{MAX_SHIFT_JUMP_M:.0f} m")
    return "; ".join(why)
