"""One glacier's IGM simulation 1960-2020 (NetCDF out), and the shared emulator's training."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from ..constants import END_YEAR, EPOCHS, START_YEAR
from ..science.domain import build_domain
from ..science.calibration import solve_period
from ..science.grids import Grid
from ..science.massbalance import elevation_bins, profiles_from_ela
from ..science.resample import product_area_km2
from ..storage import write_netcdf
from .model import IGMGlacier, IGMSettings, software_versions

Log = Callable[[str], None]


def _calibrate(model: IGMGlacier, gid: str, targets: dict[int, float], log: Log) -> tuple[dict, list[dict]]:
    """Period by period from 1960, the ELA shift that makes the simulated area at each target
    epoch match the observed outline; each period starts from the end state of the one before.
    The emulator is trained once (when the model is built) and rewound to the period's start
    before every trial, so each trial is the same function of the shift."""
    res = float(abs(model.domain["x"].values[1] - model.domain["x"].values[0]))
    saved_all: dict[int, np.ndarray] = {}
    rows: list[dict] = []
    thk, start, p_prev = None, START_YEAR, 0.0
    for end in sorted(t for t in targets if t > START_YEAR):
        obs = targets[end]
        weights = model.emulator_state()
        t_start = start
        thk_start = thk

        trial = iter(range(1, 1000))

        def evaluate(p: float):
            model.restore_emulator(weights)
            saved = model.run(t_start, end, thk0=thk_start, d_ela=p)
            area = product_area_km2(saved[end], res)
            log(f"{gid}: calibrating {t_start}-{end}, trial {next(trial)}: d_ela {p:+.1f} m -> "
                f"area {area:.4f} km2 (observed {obs:.4f})")
            return area, (saved, model.emulator_state())

        fit = solve_period(evaluate, obs, p0=p_prev)
        saved, end_weights = fit.result
        model.restore_emulator(end_weights)
        saved_all.update(saved)
        rows.append({"epoch": end, "start": t_start, "d_ela_m": round(fit.p, 2), "sim_area_km2": fit.area_km2,
                     "obs_area_km2": obs, "rel_diff_pct": fit.rel_diff_pct, "iterations": fit.iterations,
                     "status": fit.status, "trials": [[round(p, 2), round(a, 5)] for p, a in fit.history]})
        log(f"{gid}: {t_start}-{end} d_ela {fit.p:+.1f} m, area {fit.area_km2:.4f} vs {obs:.4f} km2 "
            f"({fit.rel_diff_pct:+.2f} %), {fit.iterations} runs, {fit.status}")
        thk, start, p_prev = saved[end], end, fit.p
    if start < END_YEAR:  # after the last control outline: the last shift carries on
        saved_all.update(model.run(start, END_YEAR, thk0=thk, d_ela=p_prev))
        if rows:
            log(f"{gid}: {start}-{END_YEAR} continued with d_ela {p_prev:+.1f} m (no later control outline)")
    return saved_all, rows


def simulate_glacier(domain_path: Path, out_path: Path, settings: IGMSettings, log: Log = print,
                     targets: dict[int, float] | None = None, fingerprint: str | None = None) -> dict:
    """Run IGM on one domain from 1960 to 2020 and write thickness every 5 years as NetCDF.

    With `targets` (observed area per epoch: the initial outline and at least one control
    outline) the run is calibrated to them; without, it is a plain run, flagged uncalibrated.
    `fingerprint` (of the domain, emulator, settings and targets) is stored with the result."""
    t0 = time.perf_counter()
    with xr.open_dataset(domain_path) as ds:
        domain = ds.load()
    gid = domain.attrs["glacier_id"]
    log(f"{gid}: IGM on {domain.sizes['y']}x{domain.sizes['x']} cells, {START_YEAR}-{END_YEAR}")
    model = IGMGlacier(domain, settings)
    targets = {int(k): float(v) for k, v in (targets or {}).items()}
    if len(targets) >= 2:
        saved, calibration = _calibrate(model, gid, targets, log)
    else:
        def progress(year: int, thk: np.ndarray) -> None:
            log(f"{gid}: simulated year {year}, volume {thk.sum() * 1e4 / 1e9:.4f} km3")

        saved, calibration = model.run(START_YEAR, END_YEAR, on_save=progress), []
    missing = sorted(set(EPOCHS) - set(saved))
    if missing:
        raise RuntimeError(f"glacier {gid}: IGM saved no thickness for {missing}")
    thk = np.stack([saved[y] for y in EPOCHS])
    if not np.isfinite(thk).all():
        raise RuntimeError(f"glacier {gid}: IGM produced non-finite thickness")
    runtime = time.perf_counter() - t0
    versions = software_versions()
    status = calibration_status(calibration)
    out = xr.Dataset(
        {"thk": (("time", "y", "x"), thk, {"long_name": "ice thickness", "units": "m"})},
        coords={"time": ("time", np.array(EPOCHS, dtype="int32"), {"units": "year"}),
                "x": domain["x"], "y": domain["y"]},
        attrs={"glacier_id": gid, "crs": domain.attrs["crs"], "device": model.device,
               "iceflow_startup_s": round(model.startup_s, 2), "runtime_s": round(runtime, 2),
               "emulator": settings.emulator_weights or "cold start",
               "emulator_iterations": settings.warm_iterations if settings.emulator_weights else settings.cold_iterations,
               "calibration_status": status, "calibration": json.dumps(calibration),
               "domain_fingerprint": domain.attrs.get("fingerprint", ""),
               **({"fingerprint": fingerprint} if fingerprint else {}),
               **{f"version_{k}": v for k, v in versions.items()}},
    )
    write_netcdf(out_path, out)
    return {"device": model.device, "runtime_s": round(runtime, 2), "iceflow_startup_s": round(model.startup_s, 2),
            "calibration_status": status, "model_runs": sum(r["iterations"] for r in calibration) or 1,
            "versions": versions}


def calibration_status(rows: list[dict]) -> str:
    """"calibrated", "flagged: ..." naming the periods that missed the tolerance, or
    "uncalibrated" when the glacier has no control outline."""
    if not rows:
        return "uncalibrated"
    missed = [f"{r['epoch']} ({r['rel_diff_pct']:+.1f} %)" for r in rows if r["status"] != "converged"]
    return "calibrated" if not missed else "flagged: tolerance missed at " + ", ".join(missed)


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
                       cold_iterations=settings.cold_iterations, overrides=settings.overrides)
    model = IGMGlacier(reference_icecap(), cold)
    log(f"training the ice-flow emulator on the reference ice cap ({cold.cold_iterations} iterations)")
    saved = model.run(START_YEAR, END_YEAR,
                      on_save=lambda y, thk: log(f"emulator training run: year {y}"))
    model.save_emulator(out_path)
    return {"device": model.device, "runtime_s": round(time.perf_counter() - t0, 2),
            "iceflow_startup_s": round(model.startup_s, 2), "cold_iterations": cold.cold_iterations,
            "reference_final_volume_km3": round(float(saved[END_YEAR].sum() * 1e4 / 1e9), 4),
            "versions": software_versions()}
