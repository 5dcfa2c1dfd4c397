"""One glacier's IGM simulation 1960-2020 (NetCDF out), and the shared emulator's training."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from ..constants import END_YEAR, EPOCHS, START_YEAR
from ..science.domain import build_domain
from ..science.grids import Grid
from ..science.massbalance import elevation_bins, profiles_from_ela
from ..storage import write_netcdf
from .model import IGMGlacier, IGMSettings, software_versions

Log = Callable[[str], None]


def simulate_glacier(domain_path: Path, out_path: Path, settings: IGMSettings, log: Log = print) -> dict:
    """Run IGM on one domain from 1960 to 2020 and write thickness every 5 years as NetCDF."""
    t0 = time.perf_counter()
    with xr.open_dataset(domain_path) as ds:
        domain = ds.load()
    gid = domain.attrs["glacier_id"]
    log(f"{gid}: IGM on {domain.sizes['y']}x{domain.sizes['x']} cells, {START_YEAR}-{END_YEAR}")
    model = IGMGlacier(domain, settings)

    def progress(year: int, thk: np.ndarray) -> None:
        log(f"{gid}: simulated year {year}, volume {thk.sum() * 1e4 / 1e9:.4f} km3")

    saved = model.run(START_YEAR, END_YEAR, on_save=progress)
    missing = sorted(set(EPOCHS) - set(saved))
    if missing:
        raise RuntimeError(f"glacier {gid}: IGM saved no thickness for {missing}")
    thk = np.stack([saved[y] for y in EPOCHS])
    if not np.isfinite(thk).all():
        raise RuntimeError(f"glacier {gid}: IGM produced non-finite thickness")
    runtime = time.perf_counter() - t0
    versions = software_versions()
    out = xr.Dataset(
        {"thk": (("time", "y", "x"), thk, {"long_name": "ice thickness", "units": "m"})},
        coords={"time": ("time", np.array(EPOCHS, dtype="int32"), {"units": "year"}),
                "x": domain["x"], "y": domain["y"]},
        attrs={"glacier_id": gid, "crs": domain.attrs["crs"], "device": model.device,
               "iceflow_startup_s": round(model.startup_s, 2), "runtime_s": round(runtime, 2),
               "emulator": settings.emulator_weights or "cold start",
               "emulator_iterations": settings.warm_iterations if settings.emulator_weights else settings.cold_iterations,
               **{f"version_{k}": v for k, v in versions.items()}},
    )
    write_netcdf(out_path, out)
    return {"device": model.device, "runtime_s": round(runtime, 2), "iceflow_startup_s": round(model.startup_s, 2),
            "versions": versions}


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
