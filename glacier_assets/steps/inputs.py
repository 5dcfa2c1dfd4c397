"""What each glacier's simulation is made from: the outline areas and geodetic balance it is
calibrated to, and the fingerprints today's inputs give its domain and simulation (a product whose
fingerprint differs is out of date)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from ..constants import (
    SPINUP_START,
    outline_model_time,
)
from ..errors import GlacierError
from ..fingerprints import simulation_fingerprint
from ..inventory.reference import read_geodetic_table
from ..inventory.region import RegionSpec
from .domain import domain_fingerprint, glacier_rows


def observed_areas(rows: gpd.GeoDataFrame) -> dict[int, float]:
    """Observed area per model time (the outline's year + 1, `outline_model_time`) from a
    glacier's outlines, initial and control; where an initial and a control outline share a year
    the control one wins."""
    ordered = rows.assign(_control=rows["role"] == "control").sort_values(["year", "_control"])
    return {outline_model_time(int(r["year"])): float(r["area_km2"]) for _, r in ordered.iterrows()}


def calibration_targets(rows: gpd.GeoDataFrame) -> dict[int, float]:
    """Areas the simulation is calibrated to, by model time: every outline of the glacier (the
    initial one too; a glacier with a single outline is calibrated to it by the spin-up) dated
    after the spin-up's start."""
    return {t: a for t, a in observed_areas(rows).items() if t > SPINUP_START}


def geodetic_targets(spec: RegionSpec) -> dict[str, dict]:
    """Glacier -> the geodetic balance its simulation is calibrated to (`start`, `end`, `mwe` and,
    if the table gives it, its error `err`, all m w.e. a-1); empty when the spec gives none or
    says to only compare with them."""
    source = spec.geodetic_mass_balance
    if source is None or not source.calibrate:
        return {}
    table = read_geodetic_table(source.path)
    err = table["err_mwe"] if "err_mwe" in table else pd.Series(np.nan, index=table.index)
    return {r.glacier_id: {"start": int(r.start), "end": int(r.end), "mwe": round(float(r.dmdtda_mwe), 6),
                           **({"err": round(float(e), 6)} if np.isfinite(e) else {})}
            for r, e in zip(table.itertuples(), err.astype(float))}


def simulation_inputs(rows: gpd.GeoDataFrame, geodetic: dict[str, dict], glacier_id: str
                      ) -> tuple[dict[int, float], dict | None]:
    """What a glacier's simulation is calibrated to: its outlines' areas by model time
    (`calibration_targets`) and, if it has outlines, its geodetic balance (from `geodetic_targets`)."""
    targets = calibration_targets(rows)
    return targets, geodetic.get(glacier_id) if targets else None



def expected_fingerprints(inventory: gpd.GeoDataFrame, spec: RegionSpec, emulator_fp: str | None,
                          settings: dict | None, glacier_ids: list[str] | None = None) -> dict[str, dict]:
    """Glacier -> {"domain", "simulation"}: the fingerprints its domain and simulation would have
    if made from today's inputs (None when the domain cannot be laid out, and the simulation's
    when there are no `settings`: no rheology yet)."""
    out: dict[str, dict] = {}
    geodetic = geodetic_targets(spec)
    for gid in glacier_ids or sorted(inventory["glacier_id"].unique()):
        try:
            dom = domain_fingerprint(gid, inventory, spec)
        except GlacierError:
            out[gid] = {"domain": None, "simulation": None}
            continue
        targets, geo = simulation_inputs(glacier_rows(inventory, gid), geodetic, gid)
        out[gid] = {"domain": dom, "simulation": None if settings is None
                    else simulation_fingerprint(gid, dom, emulator_fp, settings, targets, geo)}
    return out


__all__ = ["calibration_targets", "expected_fingerprints", "geodetic_targets", "observed_areas", "simulation_inputs"]
