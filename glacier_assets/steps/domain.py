"""The model domain of one glacier: its outlines, DEM and balance forcing on a 100 m UTM grid, with
the inversion's first guess (`science/domain.py`), written as NetCDF; and the domain's layout and
fingerprint, which decide whether it is current."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.warp import Resampling
from shapely.geometry import box
from shapely.ops import unary_union

from ..constants import (
    DEM_VOID_FILL_MAX_PCT,
    DOMAIN_BORDER_CELLS,
    DOMAIN_MARGIN_PER_SIZE,
    GEOGRAPHIC_CRS,
    ICE_ALLOWED_BUFFER_M,
    MAX_DOMAIN_SIDE_KM,
    MODEL_RESOLUTION_M,
    TREND_SPINUP_START,
)
from ..errors import GlacierError
from ..fingerprints import fingerprint, input_parts
from ..inventory.forcing import climate_profiles, ela_table_profiles
from ..inventory.region import ElaTableForcing, RegionSpec
from ..science.domain import allowed_ice_mask, build_domain, rasterize
from ..science.grids import Grid, reproject_tiles, snapped_grid, utm_crs_for
from ..science.masks import volume_km3
from ..science.massbalance import elevation_bins
from ..science.resample import product_area_km2
from ..storage import write_netcdf


def glacier_rows(inventory: gpd.GeoDataFrame, glacier_id: str) -> gpd.GeoDataFrame:
    rows = inventory[inventory["glacier_id"] == glacier_id]
    if rows.empty:
        raise GlacierError(f"glacier {glacier_id}: not in the outline inventory")
    if not (rows["role"] == "initial").any():
        raise GlacierError(f"glacier {glacier_id}: no initial outline")
    return rows


def _dem_resampling(dem_path: Path, grid: Grid) -> Resampling:
    """Average when the DEM is finer than the model grid, bilinear otherwise."""
    with rasterio.open(dem_path) as src:
        res = abs(src.transform.a)
        if src.crs.is_geographic:
            res *= 111_000.0 * np.cos(np.deg2rad((src.bounds.top + src.bounds.bottom) / 2))
    return Resampling.average if res < grid.res else Resampling.bilinear


def domain_border_cells(rows: gpd.GeoDataFrame, margin_m: float | None = None) -> int:
    """The ice-free border of a glacier's model domain, in cells: `margin_m` if given, else the
    larger of DOMAIN_BORDER_CELLS and DOMAIN_MARGIN_PER_SIZE times the square root of the
    glacier's largest outline (room for the ice it may grow)."""
    if margin_m is None:
        size_m = np.sqrt(float(rows["area_km2"].max()) * 1e6)
        margin_m = max(DOMAIN_BORDER_CELLS * MODEL_RESOLUTION_M, DOMAIN_MARGIN_PER_SIZE * size_m)
    return int(np.ceil(margin_m / MODEL_RESOLUTION_M))


def _neighbours(glacier_id: str, inventory: gpd.GeoDataFrame, grid: Grid) -> gpd.GeoDataFrame:
    """The other glaciers' initial outlines that reach into `grid`."""
    others = inventory[(inventory["role"] == "initial") & (inventory["glacier_id"] != glacier_id)]
    footprint = gpd.GeoSeries([box(*grid.bounds)], crs=grid.crs).to_crs(GEOGRAPHIC_CRS).iloc[0]
    return others[others.intersects(footprint)]


def domain_layout(glacier_id: str, inventory: gpd.GeoDataFrame, margin_m: float | None = None
                  ) -> tuple[gpd.GeoDataFrame, Grid, gpd.GeoDataFrame]:
    """The glacier's own outlines (EPSG:4326), its 100 m model grid in its UTM zone (the outlines
    and a border, `domain_border_cells`), and the other glaciers' initial outlines that reach
    into that grid: everything the domain is made of besides the DEM and the forcing."""
    rows = glacier_rows(inventory, glacier_id)
    centroid = rows[rows["role"] == "initial"].geometry.iloc[0].representative_point()
    crs = utm_crs_for(centroid.x, centroid.y)
    grid = snapped_grid(crs, unary_union(list(rows.to_crs(crs).geometry)).bounds, MODEL_RESOLUTION_M,
                        domain_border_cells(rows, margin_m))
    if max(grid.width, grid.height) * grid.res / 1e3 > MAX_DOMAIN_SIDE_KM:
        utm = rows.to_crs(crs).geometry
        origin = utm[rows["role"] == "initial"].iloc[0].centroid
        km = utm.centroid.distance(origin) / 1e3
        far = rows.loc[km.idxmax()]
        raise GlacierError(
            f"glacier {glacier_id}: its outlines span {grid.width * grid.res / 1e3:.0f} x "
            f"{grid.height * grid.res / 1e3:.0f} km, more than a glacier's model domain may "
            f"({MAX_DOMAIN_SIDE_KM:g} km): the {far['role']} outline of {far['year']} from {far['source']} lies "
            f"{km.max():.0f} km from the initial one; is it in the wrong place or CRS?")
    return rows, grid, _neighbours(glacier_id, inventory, grid)


def domain_fingerprint(glacier_id: str, inventory: gpd.GeoDataFrame, spec: RegionSpec) -> str:
    """Everything `make_domain` reads: the glacier's outlines, its neighbours' initial outlines in
    its grid, the DEM, the forcing and the grid constants."""
    rows, grid, others = domain_layout(glacier_id, inventory, spec.dem.margin_m)
    outlines = [(r.role, int(r.year), r.geometry.wkb_hex) for r in rows.itertuples()]
    neighbours_ = sorted((r.glacier_id, r.geometry.wkb_hex) for r in others.itertuples())
    climate = [] if isinstance(spec.forcing, ElaTableForcing) else [TREND_SPINUP_START]  # its table's first year
    return fingerprint("glacier_domain", glacier_id, outlines, neighbours_, list(grid.bounds), grid.res,
                       ICE_ALLOWED_BUFFER_M, DEM_VOID_FILL_MAX_PCT, input_parts(spec.dem), input_parts(spec.forcing),
                       *climate)


def percent(fraction: float) -> str:
    """A share as a percentage a person can read: 37 %, 4.2 %, 0.31 %, 0.0025 %."""
    pct = 100.0 * fraction
    return f"{pct:.0f} %" if pct >= 10 else f"{pct:.1f} %" if pct >= 1 else f"{pct:.2g} %"


def fill_dem_voids(dem: np.ndarray, glacier_id: str, dem_name: str, max_pct: float = DEM_VOID_FILL_MAX_PCT,
                   required: np.ndarray | None = None, margin_m: float = 0.0) -> tuple[np.ndarray, int]:
    """Fill the DEM's voids on the model grid by inverse-distance interpolation from the cells
    around them. Without `required`, the voids may be at most `max_pct` of the domain; with it
    (the glacier's outlines and `margin_m` around them), at most `max_pct` of those cells, and any
    void beyond them is filled. Otherwise a GlacierError that gives the share. Returns the DEM and
    the number of cells filled."""
    from rasterio.fill import fillnodata

    void = ~np.isfinite(dem)
    if not void.any():
        return dem, 0
    if required is None:
        share = float(void.mean())
        if 100.0 * share > max_pct:
            raise GlacierError(
                f"glacier {glacier_id}: the DEM {dem_name} leaves {percent(share)} of its "
                f"{dem.shape[0]}x{dem.shape[1]}-cell model domain without data ({int(void.sum())} cells; at most "
                f"{max_pct:g} % are filled): "
                "it does not cover the glacier and its margin")
    else:
        share = float(void[required].mean())
        if 100.0 * share > max_pct:
            raise GlacierError(
                f"glacier {glacier_id}: the DEM {dem_name} does not cover the glacier: {percent(share)} of the "
                f"{int(required.sum())} cells of its outlines and their {margin_m:g} m margin have no data (at most "
                f"{max_pct:g} % are filled)")
    filled = fillnodata(np.where(void, 0.0, dem), mask=(~void).astype("uint8"), max_search_distance=max(dem.shape))
    return filled, int(void.sum())


def _dem_names(spec: RegionSpec) -> str:
    return ", ".join(p.name for p in spec.dem.paths)


def read_dem(spec: RegionSpec, grid: Grid, glacier_id: str,
             outlines: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """The region's DEM on `grid` (averaged or bilinear, `_dem_resampling`; several tiles are
    mosaicked first, `reproject_tiles`), voids filled (`fill_dem_voids`; with the
    glacier's `outlines` as a mask, only their `min_margin_m` surroundings must be covered): the
    DEM and the number of cells filled."""
    dem = reproject_tiles([str(p) for p in spec.dem.paths], grid, _dem_resampling(spec.dem.paths[0], grid))
    required = None
    if outlines is not None:
        from scipy.ndimage import binary_dilation

        cells = int(np.ceil(spec.dem.min_margin_m / grid.res))
        required = binary_dilation(outlines, iterations=cells) if cells else outlines
    return fill_dem_voids(dem, glacier_id, _dem_names(spec), required=required, margin_m=spec.dem.min_margin_m)


def make_domain(glacier_id: str, inventory: gpd.GeoDataFrame, spec: RegionSpec, out_path: Path,
                fingerprint_: str | None = None) -> dict:
    """Model domain of one glacier (100 m UTM grid; DEM, outlines, ice flux and slope for the
    inversion, allowed mask, balance profiles) written as NetCDF. Returns figures for metadata."""
    rows, grid, others = domain_layout(glacier_id, inventory, spec.dem.margin_m)
    crs = grid.crs
    centroid = rows[rows["role"] == "initial"].geometry.iloc[0].representative_point()
    own = rows.to_crs(crs)
    initial = own[own["role"] == "initial"].iloc[0]
    dem, n_filled = read_dem(spec, grid, glacier_id, outlines=rasterize(list(own.geometry), grid))
    initial_mask = rasterize([initial.geometry], grid)
    if initial_mask.sum() == 0:
        raise GlacierError(f"glacier {glacier_id}: the initial outline covers no 100 m cell centre")
    nearest_dem = own.iloc[int(np.argmin(np.abs(own["year"].to_numpy() - spec.dem.year)))]
    bed_mask = rasterize([nearest_dem.geometry], grid)
    others_mask = rasterize(list(others.to_crs(crs).geometry), grid)
    allowed = allowed_ice_mask(rasterize(list(own.geometry), grid), others_mask & ~initial_mask, grid.res)
    profiles, info = forcing_profiles(spec, centroid, dem, initial_mask)
    filled_pct = 100.0 * n_filled / dem.size
    dem_flag = (f"the DEM covers {percent(1 - n_filled / dem.size)} of the domain; the rest, beyond the glacier's "
                f"{spec.dem.min_margin_m:g} m margin, was filled" if filled_pct > DEM_VOID_FILL_MAX_PCT else "")
    attrs = {"forcing": info.kind, "initial_outline_year": int(initial["year"]),
             "bed_outline_year": int(nearest_dem["year"]), "dem_year": spec.dem.year,
             "dem_void_cells_filled": n_filled, "dem_flag": dem_flag, "region": spec.name,
             "fingerprint": fingerprint_ or domain_fingerprint(glacier_id, inventory, spec)}
    attrs.update({f"forcing_{k}": (v if not isinstance(v, list) else ",".join(map(str, v)) or "none")
                  for k, v in info.details.items()})
    ds = build_domain(glacier_id, grid, dem, initial_mask, bed_mask, allowed, profiles, attrs,
                      initial_area_km2=float(initial["area_km2"]))
    write_netcdf(out_path, ds)
    thk = ds["thk"].values
    return {
        "path": str(out_path),
        "crs": crs,
        "shape": list(grid.shape),
        "resolution_m": grid.res,
        "area_km2": round(float(initial["area_km2"]), 4),
        "grid_area_km2": round(float(initial_mask.sum() * grid.cell_area_m2 / 1e6), 4),
        "volume_km3": round(volume_km3(thk, grid.cell_area_m2), 5),
        "initial_product_area_km2": round(product_area_km2(thk, grid.res), 4),
        "max_thickness_m": round(float(thk.max()), 1),
        "dem_void_cells_filled": n_filled,
        "dem_filled_pct": round(filled_pct, 2),
        "dem_flag": dem_flag,
        "border_cells": domain_border_cells(rows, spec.dem.margin_m),
        "fingerprint": attrs["fingerprint"],
        "forcing": info.kind,
        **{f"forcing_{k}": v for k, v in info.details.items() if not isinstance(v, (list, dict))},
    }




def forcing_profiles(spec: RegionSpec, lonlat, dem: np.ndarray, outline: np.ndarray):
    z = elevation_bins(float(np.nanmin(dem)), float(np.nanmax(dem)))
    if isinstance(spec.forcing, ElaTableForcing):
        return ela_table_profiles(spec.forcing, z)
    return climate_profiles(spec.forcing, lonlat.x, lonlat.y, z, target_ela=float(np.median(dem[outline])))


__all__ = [
    "domain_border_cells", "domain_fingerprint", "domain_layout", "fill_dem_voids", "forcing_profiles",
    "glacier_rows", "make_domain", "percent", "read_dem",
]
