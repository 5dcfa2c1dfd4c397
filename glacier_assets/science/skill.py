"""How well a simulation matches independent observations of a real glacier: thickness (a
raster or points, e.g. the Farinotti et al. 2019 consensus or GPR) and glacier-wide annual mass
balance (e.g. WGMS). Plain arrays and series in, a few figures out."""

from __future__ import annotations

import numpy as np
import pandas as pd


def thickness_skill(simulated: np.ndarray, observed: np.ndarray) -> dict:
    """Bias (simulated - observed), RMSE and means (m) where the observation is finite and > 0."""
    sim, obs = np.asarray(simulated, dtype="float64"), np.asarray(observed, dtype="float64")
    where = np.isfinite(obs) & (obs > 0) & np.isfinite(sim)
    if not where.any():
        raise ValueError("no observed thickness overlaps the simulation")
    diff = sim[where] - obs[where]
    return {"n": int(where.sum()), "bias_m": float(diff.mean()), "rmse_m": float(np.sqrt((diff**2).mean())),
            "mean_observed_m": float(obs[where].mean()), "mean_simulated_m": float(sim[where].mean())}


def mass_balance_skill(simulated: pd.Series, observed: pd.Series) -> dict:
    """Annual glacier-wide balances (m w.e., indexed by year) over the years both have: bias,
    RMSE, correlation, and the mean of each."""
    both = pd.concat({"sim": simulated, "obs": observed}, axis=1).dropna()
    if len(both) < 2:
        raise ValueError("fewer than two years with both a simulated and an observed balance")
    diff = both["sim"] - both["obs"]
    return {"n_years": int(len(both)), "first_year": int(both.index.min()), "last_year": int(both.index.max()),
            "bias_mwe": float(diff.mean()), "rmse_mwe": float(np.sqrt((diff**2).mean())),
            "correlation": float(both["sim"].corr(both["obs"])),
            "mean_simulated_mwe": float(both["sim"].mean()), "mean_observed_mwe": float(both["obs"].mean())}


def geodetic_balance(volume_start_km3: float, volume_end_km3: float, area_start_km2: float, area_end_km2: float,
                     years: float) -> float:
    """Mean specific mass balance (m w.e. a-1) from a volume change over `years`, as geodetic
    balances are made: the volume change over the mean area, converted with GEODETIC_DENSITY."""
    from ..constants import GEODETIC_DENSITY

    mean_area = 0.5 * (area_start_km2 + area_end_km2)
    if not mean_area > 0:
        return float("nan")
    return (volume_end_km3 - volume_start_km3) / mean_area * 1e3 * GEODETIC_DENSITY / 1000.0 / years


def series_geodetic_balance(series, start: int, end: int) -> float:
    """`geodetic_balance` of a series {year: (volume km3, area km2)} from the start of `start` to
    the start of `end`; NaN when either year is not in it."""
    if start not in series or end not in series:
        return float("nan")
    (v0, a0), (v1, a1) = series[start], series[end]
    return geodetic_balance(v0, v1, a0, a1, end - start)
