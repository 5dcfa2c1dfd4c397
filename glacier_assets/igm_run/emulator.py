"""The shared ice-flow emulator, trained once on a reference ice cap for every glacier's run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import xarray as xr

from ..constants import (
    END_YEAR,
    START_YEAR,
)
from ..science.domain import build_domain
from ..science.grids import Grid
from ..science.masks import volume_km3
from ..science.massbalance import elevation_bins, profiles_from_ela
from .glacier import IGMGlacier
from .settings import IGMSettings, Log, software_versions


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
