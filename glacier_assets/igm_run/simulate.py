"""One glacier's IGM simulation 1960-2020, calibrated (`calibrate.py`), written as NetCDF."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from ..constants import (
    END_YEAR,
    EPOCHS,
    ICE_DENSITY,
    SPINUP_START,
    START_YEAR,
)
from ..science.calibration import (
    drive,
    spinup_start,
)
from ..science.masks import volume_km3
from ..simulation_file import SimulationFile
from .calibrate import Calibration, glacier_runs, model_year_figures
from .glacier import IGMGlacier, ModelPool
from .model import IGMBatch
from .settings import IGMSettings, Log, software_versions, validates


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


def simulate_glacier(domain_path: Path, out_path: Path, settings: IGMSettings, log: Log = print,
                     targets: dict[int, float] | None = None, fingerprint: str | None = None,
                     geodetic: dict | None = None, pool: ModelPool | None = None) -> dict:
    """Run IGM on one domain from the spin-up to 2020 and write thickness every 5 years from 1960
    (and at every outline's model time) as NetCDF.

    `targets` maps model times (an outline's year + 1) to observed areas; the run is calibrated to
    them. Without, it is a plain run (no shift), flagged uncalibrated. With `geodetic` (`start`,
    `end` years and `mwe`, a geodetic balance) the balance of that period is calibrated to it too
    (`calibrate_balance`). `fingerprint` (of the domain, emulator, settings and targets) is
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
    first = spinup_start(targets, geodetic)
    log(f"{gid}: IGM on {domain.sizes['y']}x{domain.sizes['x']} cells (a {grid} grid"
        f"{', its model re-used' if model.retargeted else ''}), {first}-{END_YEAR} "
        f"(spin-up from {first}), rheology factor {settings.rheology_factor:g}")
    result: tuple[Calibration, dict, list]  # the calibration, the geodetic record, the validation rows
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
        result = (Calibration(saved, model.last_series[0], [], [], None), {}, [])
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


def write_simulation(out_path: Path, domain: xr.Dataset, targets: dict[int, float], cal: Calibration,
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
