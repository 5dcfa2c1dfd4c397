"""The regional rheology: one factor scaling the ice's mobility, calibrated so that the inverted
volume of the glaciers with a reference volume equals their summed reference, then corrected so
that the calibrated simulations of a sample of them carry that volume too."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np

from ..constants import (
    GEOGRAPHIC_CRS,
    GLEN_N,
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


def rheology_fingerprint(inventory: gpd.GeoDataFrame, spec: RegionSpec, refs: dict,
                         sample: dict[str, str | None] | None = None) -> str:
    """Of the references and, per glacier with one, the outline they belong to, the DEM and
    forcing; and of the sample's simulations (glacier -> the fingerprint of its simulation but for
    the factor, which the rest decides)."""
    parts = []
    for gid, (vol, year, source) in sorted(refs.items()):
        ref = reference_outline(glacier_rows(inventory, gid), year)
        parts.append((gid, round(vol, 9), year, source, int(ref["year"]), ref.geometry.wkb_hex))
    return fingerprint("ice_rheology", parts, input_parts(spec.dem), input_parts(spec.forcing), RHEOLOGY_FACTOR_STEP,
                       sorted((sample or {}).items()))


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


def rheology_sample(reference_km3: dict[str, float], size: int) -> list[str]:
    """The glaciers whose calibrated simulations correct the factor (`dynamic_factor`): `size` of
    them at evenly spread shares of the references' summed volume (smallest glaciers first), so the
    sample stands for where the region's ice is, not for its many small glaciers; all of them if
    there are no more than `size`."""
    ids = sorted(reference_km3, key=lambda g: (reference_km3[g], g))
    if size <= 0 or len(ids) <= size:
        return ids if size > 0 else []
    vol = np.array([reference_km3[g] for g in ids])
    middle = (np.cumsum(vol) - vol / 2) / vol.sum()  # each glacier's place in the summed volume
    chosen: list[str] = []
    for share in (np.arange(size) + 0.5) / size:
        order = np.argsort(np.abs(middle - share), kind="stable")
        chosen.append(next(ids[i] for i in order if ids[i] not in chosen))
    return sorted(chosen)


def dynamic_factor(static: float, inverted_km3: dict[str, float], simulated_km3: dict[str, float]
                   ) -> tuple[float, float]:
    """The factor corrected by the sample's ratio R of simulated to inverted volume (each glacier's
    at its reference outline's date, both with the `static` factor), and R. Ice thickness goes as
    the mobility to the power -1/(n+2) (deformation, Glen's n = 3), so f R^(n+2) gives the
    simulated volume the inverted one, which the references calibrated. Kept on the 2 % grid."""
    glaciers = sorted(simulated_km3)
    if not glaciers:
        raise ValueError("dynamic_factor needs at least one simulated glacier")
    ratio = sum(simulated_km3[g] for g in glaciers) / sum(inverted_km3[g] for g in glaciers)
    if not (np.isfinite(ratio) and ratio > 0):
        raise ValueError(f"the sample's simulated volume is not usable (ratio {ratio})")
    return quantize_factor(static * ratio ** (GLEN_N + 2.0), RHEOLOGY_FACTOR_STEP), float(ratio)


__all__ = ["calibrate_rheology", "dynamic_factor", "inversion_inputs", "reference_outline", "rheology_fingerprint",
           "rheology_sample"]
