"""One glacier's IGM simulation 1960-2020 (NetCDF out), and the shared emulator's training."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..constants import (
    END_YEAR,
    EPOCHS,
    ICE_DENSITY,
    OUTLINE_TIME_OFFSET_YEARS,
    SPINUP_START,
    START_YEAR,
    TREND_SPINUP_START,
)
from ..science.calibration import (
    BOUNDS_M,
    GEODETIC_ERROR_MWE,
    GEODETIC_MAX_ITER,
    GEODETIC_TOL_MWE,
    GRADIENT_BOUNDS,
    GRADIENT_PER_MWE,
    LOO_MAX_ITER,
    MAX_SHIFT_JUMP_M,
    MAX_STEP_M,
    PLAUSIBLE_SHIFT_M,
    SHIFT_PER_MWE,
    TOL_PCT,
    TOL_PIXELS,
    drive,
    geodetic_parameter,
    gradient_period,
    period_search,
    scalar_search,
)
from ..science.domain import build_domain
from ..science.grids import Grid
from ..science.masks import volume_km3
from ..science.massbalance import elevation_bins, profiles_from_ela
from ..science.resample import product_area_km2
from ..science.skill import series_geodetic_balance
from ..simulation_file import SimulationFile
from .model import NO_GRADIENT, IGMBatch, IGMGlacier, IGMSettings, ModelPool, TileRun, software_versions, validates

Log = Callable[[str], None]


@dataclass
class _Period:
    start: int
    end: int
    thk0: np.ndarray | None  # None: the domain's initial ice (the spin-up)
    flow: list | None  # the flow state at the period's start (None: the model's initial one)
    d_ela: float = 0.0


@dataclass
class _Calibration:
    saved: dict  # model time -> thickness (north-up)
    series: dict  # year -> (volume km3, area km2)
    rows: list  # one per outline (the calibration report's)
    periods: list  # _Period per outline
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


def _calibrate(gid: str, targets: dict[int, float], res: float, first_shift: float, log: Log, first: int = 0,
               before: _Calibration | None = None, gradient: tuple = NO_GRADIENT, guess: list[float] | None = None,
               spinup_offset: float = 0.0, spinup_start: int = SPINUP_START):
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
    generator of runs that returns the `_Calibration`."""
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
        period = _Period(start, end, thk, flow)
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
    return _Calibration(saved_all, series_all, rows, periods, flow, gradient, spinup_offset, spinup_start)


def _calibrate_geodetic(gid: str, targets: dict[int, float], res: float, cal: _Calibration, geodetic: dict,
                        log: Log):
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
            new = yield from _calibrate(gid, targets, res, cal.periods[0].d_ela, log, before=cal, gradient=cal.gradient,
                                        guess=shifts_guess(tried_offsets, offset), spinup_offset=offset,
                                        spinup_start=cal.spinup_start)
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
            new = yield from _calibrate(gid, targets, res, 0.0, log, first=first, before=cal,
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


def _leave_one_out(gid: str, targets: dict[int, float], res: float, cal: _Calibration, log: Log):
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
                                                   aim_pct=TOL_PCT, aim_pixels=TOL_PIXELS), trial)
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


def merged_shift(period: _Period, nxt: _Period) -> float:
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
    cal = yield from _counted(_calibrate(gid, targets, res, first_shift, log, spinup_start=start), years,
                              lambda run: "spinup" if run.start == start else "outlines")
    fit: dict = {}
    if geodetic:
        cal, fit = yield from _counted(_calibrate_geodetic(gid, targets, res, cal, geodetic, log), years,
                                       lambda run: "geodetic")
    validation = (yield from _counted(_leave_one_out(gid, targets, res, cal, log), years,
                                      lambda run: "validation")) if leave_one_out else []
    return cal, fit, validation


def spinup_start(targets: dict[int, float], geodetic: dict | None) -> int:
    """The year a glacier's spin-up starts: `TREND_SPINUP_START` when a balance period before its
    first outline sets the spin-up (`geodetic_parameter`: "spinup_offset_m"), else `SPINUP_START`."""
    times = sorted(t for t in targets if t > SPINUP_START)
    if geodetic and times and geodetic_parameter(times, int(geodetic["start"]), int(geodetic["end"])) \
            == "spinup_offset_m":
        return TREND_SPINUP_START
    return SPINUP_START


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


def run_alone(model: IGMBatch, runs, tile: int = 0):
    """Answer a generator of runs with tile `tile` of `model` alone; returns what the generator
    returns."""
    return drive(runs, lambda run: model.run_tiles({tile: run})[tile])


def annual_mass_balance(volume_km3: np.ndarray, area_km2: np.ndarray) -> np.ndarray:
    """Glacier-wide balance (m w.e.) of each yearly step: the volume change over the mean area,
    times rho_ice / rho_water; NaN for the last year and where there is no ice."""
    dv = np.append(np.diff(volume_km3), np.nan)
    mean_area = np.append(0.5 * (area_km2[1:] + area_km2[:-1]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean_area > 0, dv / mean_area * 1e3 * ICE_DENSITY / 1000.0, np.nan)


def shift_flag(p: float, p_before: float | None) -> str:
    """"" for a physically plausible ELA shift, else why not: beyond +-PLAUSIBLE_SHIFT_M (~2.5 K of
    temperature bias at 6.5 K/km) or a jump from the period before beyond MAX_SHIFT_JUMP_M."""
    why = []
    if abs(p) > PLAUSIBLE_SHIFT_M:
        why.append(f"shift {p:+.0f} m beyond +-{PLAUSIBLE_SHIFT_M:.0f} m")
    if p_before is not None and abs(p - p_before) > MAX_SHIFT_JUMP_M:
        why.append(f"jump {p - p_before:+.0f} m beyond +-{MAX_SHIFT_JUMP_M:.0f} m")
    return "; ".join(why)


def simulate_glacier(domain_path: Path, out_path: Path, settings: IGMSettings, log: Log = print,
                     targets: dict[int, float] | None = None, fingerprint: str | None = None,
                     geodetic: dict | None = None, pool: ModelPool | None = None) -> dict:
    """Run IGM on one domain from the spin-up to 2020 and write thickness every 5 years from 1960
    (and at every outline's model time) as NetCDF.

    `targets` maps model times (an outline's year + 1) to observed areas; the run is calibrated to
    them. Without, it is a plain run (no shift), flagged uncalibrated. With `geodetic` (`start`,
    `end` years and `mwe`, a geodetic balance) the balance of that period is calibrated to it too
    (`_calibrate_geodetic`). `fingerprint` (of the domain, emulator, settings and targets) is
    stored with the result. With a `pool`, a model of the same grid built for an earlier glacier is
    re-targeted to this one (the same answers, without building IGM's functions again)."""
    t0 = time.perf_counter()
    with xr.open_dataset(domain_path) as ds:
        domain = ds.load()
    gid = domain.attrs["glacier_id"]
    model = pool.model(domain, settings) if pool is not None else IGMGlacier(domain, settings)
    model.on_step = getattr(log, "tick", None)  # igm_run/progress.py
    grid = "x".join(map(str, model.packing.shape))
    targets = {int(k): float(v) for k, v in (targets or {}).items()}
    first = spinup_start(targets, geodetic) if targets else SPINUP_START
    log(f"{gid}: IGM on {domain.sizes['y']}x{domain.sizes['x']} cells (a {grid} grid"
        f"{', its model re-used' if model.retargeted else ''}), {first}-{END_YEAR} "
        f"(spin-up from {first}), rheology factor {settings.rheology_factor:g}")
    result: tuple[_Calibration, dict, list]  # the calibration, the geodetic record, the validation rows
    years: dict = {}
    if targets:
        result = run_alone(model, glacier_runs(gid, targets, model.resolution, model.balanced_shift(), log, geodetic,
                                               validates(settings, gid), years))
    else:
        def progress(year: int, thk: np.ndarray) -> None:
            if year >= START_YEAR:
                log(f"{gid}: simulated year {year}, volume {volume_km3(thk, model.resolution ** 2):.4f} km3")

        saved = model.run(SPINUP_START, END_YEAR, on_save=progress)
        years["plain"] = END_YEAR - SPINUP_START  # counted in the total, in no calibration phase
        result = (_Calibration(saved, model.last_series[0], [], [], None), {}, [])
    return write_simulation(out_path, domain, targets, *result, settings, model,
                            {"runtime_s": round(time.perf_counter() - t0, 2), "model_runs": model.runs,
                             **model_year_figures(years), "model_grid": grid, "model_reused": int(model.retargeted),
                             **flow_figures(model, 0)},
                            fingerprint)


def flow_figures(model: IGMBatch, tile: int) -> dict:
    """The tile's IGM mobility beyond the regional factor when the flow was made consistent with the
    inversion (`IGMSettings.flow_consistency`): the measured flux ratio, and the mobility (its median
    where it is a field, `IGMSettings.consistency_scale_m`)."""
    if not model.settings.flow_consistency:
        return {}
    return {"flux_ratio": round(float(model.flux_ratios[tile]), 4),
            "flow_mobility": round(float(np.median(model.mobility[tile])), 4)}


def write_simulation(out_path: Path, domain: xr.Dataset, targets: dict[int, float], cal: _Calibration,
                     geodetic_fit: dict, validation: list, settings: IGMSettings, model: IGMBatch, figures: dict,
                     fingerprint: str | None = None) -> dict:
    """The simulation's NetCDF (thickness at the epochs and the outlines' model times, yearly
    volume, area and balance, the calibration and its validation) written atomically; returns the
    figures Dagster reports for it."""
    gid = domain.attrs["glacier_id"]
    saved, series, calibration = cal.saved, cal.series, cal.rows
    missing = sorted(set(EPOCHS) - set(saved))
    if missing:
        raise RuntimeError(f"glacier {gid}: IGM saved no thickness for {missing}")
    outline_times = sorted(t for t in targets if t in saved)
    if not all(np.isfinite(saved[t]).all() for t in [*EPOCHS, *outline_times]):
        raise RuntimeError(f"glacier {gid}: IGM produced non-finite thickness")
    versions = software_versions()
    status = calibration_status(calibration, geodetic_fit)
    years = sorted(series)
    vol, area = (np.array([series[y][k] for y in years]) for k in (0, 1))
    yearly = {y: (v, a, b) for y, v, a, b in zip(years, vol, area, annual_mass_balance(vol, area), strict=True)}
    attrs = {"glacier_id": gid, "crs": domain.attrs["crs"], "device": model.device,
             "iceflow_startup_s": round(model.startup_s, 2), **figures,
             "iceflow_mapping": settings.mapping,
             **({"emulator": settings.emulator_weights or "cold start",
                 "emulator_iterations": settings.warm_iterations if settings.emulator_weights
                 else settings.cold_iterations} if settings.mapping == "network" else
                {"iceflow_start_iterations": settings.cold_iterations}),
             "spinup_start": cal.spinup_start, "rheology_factor": settings.rheology_factor,
             "calibration_status": status, "calibration": json.dumps(calibration),
             "validation": json.dumps(validation), "geodetic_calibration": json.dumps(geodetic_fit),
             "domain_fingerprint": domain.attrs.get("fingerprint", ""),
             **({"fingerprint": fingerprint} if fingerprint else {}),
             **{f"version_{k}": v for k, v in versions.items()}}
    SimulationFile(out_path, gid).write(domain["x"].values, domain["y"].values, {y: saved[y] for y in EPOCHS},
                                        {t: saved[t] for t in outline_times}, yearly, attrs)
    return {"device": model.device, **figures, "iceflow_startup_s": round(model.startup_s, 2),
            "calibration_status": status, "rheology_factor": settings.rheology_factor, "versions": versions}


def calibration_status(rows: list[dict], geodetic: dict | None = None) -> str:
    """"calibrated", "flagged: ..." naming the outlines (by year) whose period missed the
    tolerance or whose shift is implausible, and a geodetic balance missed by more than its error,
    or "uncalibrated" when there was nothing to calibrate to."""
    if not rows:
        return "uncalibrated"
    missed = [f"{r['obs_year']} ({r['rel_diff_pct']:+.2f} %)" for r in rows if r["status"] != "converged"]
    odd = [f"{r['obs_year']} ({r['shift_flag']})" for r in rows if r.get("shift_flag")]
    why = (["tolerance missed at " + ", ".join(missed)] if missed else []) + \
        (["implausible shift at " + ", ".join(odd)] if odd else []) + \
        ([geodetic["flag"]] if geodetic and geodetic.get("flag") else [])
    return "calibrated" if not why else "flagged: " + "; ".join(why)


def reference_icecap(n: int = 90, res: float = 100.0) -> xr.Dataset:
    """The synthetic ice cap the shared emulator is trained on: a dome rising 1,400 m above a
    5,000 m plateau with a 5,750 m ELA, the scale of the region's glaciers."""
    grid = Grid("EPSG:32646", 0.0, n * res, res, n, n)
    X, Y = np.meshgrid(grid.x - grid.x.mean(), grid.y - grid.y.mean())
    bed = 5000.0 + 1400.0 * np.exp(-(np.hypot(X / 1.3, Y) / 2500.0) ** 1.6)
    outline = bed > 5700.0
    z = elevation_bins(bed.min(), bed.max())
    years = np.arange(START_YEAR, END_YEAR + 1)
    ela = 5750.0 + 3.0 * np.clip(years - 1980, 0, None)
    prof = profiles_from_ela(years, ela, np.full(years.size, 0.005), np.full(years.size, 0.002),
                             np.full(years.size, 0.5), z)
    return build_domain("reference-icecap", grid, bed, outline, np.zeros_like(outline), np.ones_like(outline),
                        prof)


def train_emulator(out_path: Path, settings: IGMSettings, log: Log = print) -> dict:
    """IGM's cold start (300 iterations) on the reference ice cap, then a 1960-2020 run during
    which the emulator keeps training every 5 steps; the weights are saved for warm starts."""
    t0 = time.perf_counter()
    cold = IGMSettings(threads=settings.threads, seed=settings.seed, emulator_weights=None,
                       cold_iterations=settings.cold_iterations, overrides=settings.overrides, mapping="network")
    model = IGMGlacier(reference_icecap(), cold)
    log(f"training the ice-flow emulator on the reference ice cap ({cold.cold_iterations} iterations)")
    saved = model.run(START_YEAR, END_YEAR,
                      on_save=lambda y, thk: log(f"emulator training run: year {y}"))
    model.save_emulator(out_path)
    return {"device": model.device, "runtime_s": round(time.perf_counter() - t0, 2),
            "iceflow_startup_s": round(model.startup_s, 2), "cold_iterations": cold.cold_iterations,
            "reference_final_volume_km3": round(volume_km3(saved[END_YEAR], model.resolution ** 2), 4),
            "versions": software_versions()}
