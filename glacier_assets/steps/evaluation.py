"""A real glacier's simulation judged against observations it was not calibrated to: thickness
against a raster (e.g. the Farinotti consensus), mass balance against a WGMS series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..constants import REFINE
from ..science.grids import Grid, reproject_raster
from ..science.resample import refined_thickness
from ..science.skill import mass_balance_skill, series_geodetic_balance, thickness_skill
from ..simulation_file import SimulationFile


def simulated_thickness_at(sim_path: Path, year: int) -> tuple[np.ndarray, Grid, int]:
    """The simulated thickness on the 25 m product grid at the saved model time nearest the
    start of `year` (an epoch, or an outline's date), with that time."""
    sim = SimulationFile(sim_path).load()
    saved = sim.states
    when = min(saved, key=lambda t: (abs(t - year), t))
    return refined_thickness(saved[when], REFINE), sim.grid.refined(REFINE), when


def evaluate_thickness(sim_path: Path, observed_tif: Path, year: int) -> dict:
    """Simulated thickness against an observed (or consensus) thickness raster in any CRS,
    resampled bilinearly onto the product grid: bias and RMSE where the observation has ice."""

    thk, grid, when = simulated_thickness_at(sim_path, year)
    return {**thickness_skill(thk, reproject_raster(str(observed_tif), grid)), "model_time": when}


def simulated_geodetic_balance(sim_path: Path, start: int, end: int) -> dict:
    """From one read of a simulation: its mean specific balance from the start of `start` to the
    start of `end` (`simulated_mb_mwe`, m w.e. a-1, made as a geodetic one is:
    `science.skill.series_geodetic_balance`; NaN outside the simulated years), its mean area over
    the period (`mean_area_km2`) and how its balance was calibrated to a geodetic one
    (`mb_calibration`, e.g. "balance_gradient_factor 1.153 from 2000, converged"; "" if not)."""

    sim = SimulationFile(sim_path).load()
    series, record = sim.series(), sim.geodetic_calibration
    both = start in series and end in series
    return {"simulated_mb_mwe": series_geodetic_balance(series, start, end),
            "mean_area_km2": 0.5 * (series[start][1] + series[end][1]) if both else float("nan"),
            "mb_calibration": (f"{record['parameter']} {record['value']:g} from {record['from_year']}, "
                               f"{record['status']}") if "parameter" in record else ""}


def simulated_mass_balance(sim_path: Path) -> pd.Series:
    """The simulation's glacier-wide annual balance (m w.e.), indexed by balance year."""
    yearly = SimulationFile(sim_path).load().yearly
    return pd.Series(dtype="float64") if yearly is None else yearly["mass_balance_mwe"].dropna()


def read_wgms_balance(path: Path) -> pd.Series:
    """A WGMS mass-balance table (`YEAR`, `ANNUAL_BALANCE` in mm w.e.) as m w.e. per year."""
    table = pd.read_csv(path)
    missing = {"YEAR", "ANNUAL_BALANCE"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a WGMS mass-balance table (no {', '.join(sorted(missing))} column)")
    table = table.dropna(subset=["ANNUAL_BALANCE"])
    return pd.Series(table["ANNUAL_BALANCE"].to_numpy() / 1000.0, index=table["YEAR"].astype(int).to_numpy())


def evaluate_mass_balance(sim_path: Path, wgms_csv: Path) -> dict:

    return mass_balance_skill(simulated_mass_balance(sim_path), read_wgms_balance(wgms_csv))


__all__ = [
    "evaluate_mass_balance", "evaluate_thickness", "read_wgms_balance", "simulated_geodetic_balance",
    "simulated_mass_balance", "simulated_thickness_at",
]
