"""The regional rheology: one factor scaling the ice's mobility, calibrated so that the inverted
volume of the glaciers with a reference volume equals their summed reference."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np

from ..constants import (
    GEOGRAPHIC_CRS,
    MODEL_RESOLUTION_M,
    RHEOLOGY_FACTOR_STEP,
)
from ..errors import GlacierError
from ..fingerprints import fingerprint, input_parts
from ..inventory.region import RegionSpec
from ..science.domain import rasterize
from ..science.grids import snapped_grid, utm_crs_for
from ..science.inversion import InversionInputs, quantize_factor, regional_factor
from .domain import forcing_profiles, glacier_rows, read_dem


def reference_outline(rows: gpd.GeoDataFrame, year: int):
    """The glacier's outline dated nearest `year` (the later one on a tie)."""
    gap = (rows["year"].astype(int) - int(year)).abs()
    return rows.assign(_gap=gap, _neg=-rows["year"].astype(int)).sort_values(["_gap", "_neg"]).iloc[0]


def inversion_inputs(glacier_id: str, inventory: gpd.GeoDataFrame, spec: RegionSpec, year: int) -> InversionInputs:
    """Flux and slope of the glacier's outline nearest `year` on its own 100 m grid: what the
    inverted volume for any rheology factor is computed from."""
    ref = reference_outline(glacier_rows(inventory, glacier_id), year)
    point = ref.geometry.representative_point()
    crs = utm_crs_for(point.x, point.y)
    geom = gpd.GeoSeries([ref.geometry], crs=GEOGRAPHIC_CRS).to_crs(crs).iloc[0]
    grid = snapped_grid(crs, geom.bounds, MODEL_RESOLUTION_M, 3)
    mask = rasterize([geom], grid)
    dem, _ = read_dem(spec, grid, glacier_id, outlines=mask)
    if not mask.any():
        raise GlacierError(f"glacier {glacier_id}: its outline of {ref['year']} covers no 100 m cell centre")
    profiles, _ = forcing_profiles(spec, point, dem, mask)
    return InversionInputs.from_surface(dem, mask, np.interp(dem, profiles.z, profiles.mean_profile()), grid.res)


def rheology_fingerprint(inventory: gpd.GeoDataFrame, spec: RegionSpec, refs: dict) -> str:
    """Of the references and, per glacier with one, the outline they belong to, the DEM and forcing."""
    parts = []
    for gid, (vol, year, source) in sorted(refs.items()):
        ref = reference_outline(glacier_rows(inventory, gid), year)
        parts.append((gid, round(vol, 9), year, source, int(ref["year"]), ref.geometry.wkb_hex))
    return fingerprint("ice_rheology", parts, input_parts(spec.dem), input_parts(spec.forcing), RHEOLOGY_FACTOR_STEP)


def calibrate_rheology(inventory: gpd.GeoDataFrame, spec: RegionSpec, refs: dict[str, tuple[float, int, str]]
                       ) -> dict:
    """The regional rheology factor: the one that makes the summed inverted volume of the glaciers
    with a reference volume equal to their summed reference (`science.inversion.regional_factor`),
    kept on a 2 % grid. A glacier whose inputs fail is left out and named; with no reference at
    all the factor is 1 (IGM's default ice) and the record says the volume is unconstrained."""
    used, skipped = {}, {}
    for gid, (vol, year, _) in sorted(refs.items()):
        try:
            used[gid] = (inversion_inputs(gid, inventory, spec, year), vol, year)
        except (GlacierError, ValueError) as exc:
            skipped[gid] = str(exc)
    record = {"skipped": skipped,
              "source": sorted({s for _, _, s in refs.values()}), "n_glaciers": len(used),
              "reference_km3": round(sum(v for _, v, _ in used.values()), 6)}
    if not used:
        return {**record, "factor": 1.0, "raw_factor": None, "glaciers": [],
                "note": "no glacier has a reference volume: IGM's default rheology, volume not constrained"}
    raw = regional_factor([i for i, _, _ in used.values()], [v for _, v, _ in used.values()])
    factor = quantize_factor(raw, RHEOLOGY_FACTOR_STEP)
    rows: list[dict[str, Any]] = [
        {"glacier_id": g, "year": y, "reference_km3": round(v, 6), "inverted_km3": round(i.volume_km3(factor), 6)}
        for g, (i, v, y) in used.items()]
    return {**record, "factor": round(factor, 6), "raw_factor": round(raw, 6), "glaciers": rows,
            "inverted_km3": round(sum(r["inverted_km3"] for r in rows), 6)}


__all__ = ["calibrate_rheology", "inversion_inputs", "reference_outline", "rheology_fingerprint"]
