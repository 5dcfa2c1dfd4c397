"""Each step of the chain for one glacier (or one epoch), as plain functions over files.

The Dagster assets in `assets/` are thin wrappers around these; tests call them directly too.
Inputs: the validated outline inventory (GeoDataFrame) and the region spec; outputs: files in
open formats and a dict of figures for metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import rasterio
import xarray as xr
from rasterio.warp import Resampling
from shapely.geometry import box
from shapely.ops import unary_union

from .constants import (
    DEM_VOID_FILL_MAX_PCT,
    DOMAIN_BORDER_CELLS,
    DOMAIN_MARGIN_PER_SIZE,
    EPOCHS,
    GEOGRAPHIC_CRS,
    ICE_ALLOWED_BUFFER_M,
    ICE_THRESHOLD_M,
    MASK_NODATA,
    MAX_DOMAIN_SIDE_KM,
    MODEL_RESOLUTION_M,
    PRODUCT_RESOLUTION_M,
    RHEOLOGY_FACTOR_STEP,
    SPINUP_START,
    THICKNESS_NODATA,
    outline_model_time,
)
from .errors import GlacierError
from .fingerprints import file_record, fingerprint, input_parts
from .inventory.forcing import climate_profiles, ela_table_profiles
from .inventory.region import ElaTableForcing, RegionSpec
from .science.domain import allowed_ice_mask, build_domain, rasterize
from .science.grids import Grid, reproject_raster, reproject_tiles, snapped_grid, utm_crs_for
from .science.inversion import InversionInputs, quantize_factor, regional_factor
from .science.masks import glaciated_area_km2, glacier_mask, volume_km3
from .science.massbalance import elevation_bins
from .science.resample import cropped_thickness, product_area_km2, refined_thickness
from .science.vectorize import mask_to_polygons, overlaps
from .science.zones import mosaic
from .simulation_file import SimulationFile
from .storage import read_raster, remove_product, write_cog, write_geoparquet, write_netcdf, write_shapefile

REFINE = int(round(MODEL_RESOLUTION_M / PRODUCT_RESOLUTION_M))


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


def neighbours(glacier_id: str, inventory: gpd.GeoDataFrame, grid: Grid) -> gpd.GeoDataFrame:
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
    return rows, grid, neighbours(glacier_id, inventory, grid)


def domain_fingerprint(glacier_id: str, inventory: gpd.GeoDataFrame, spec: RegionSpec) -> str:
    """Everything `make_domain` reads: the glacier's outlines, its neighbours' initial outlines in
    its grid, the DEM, the forcing and the grid constants."""
    rows, grid, others = domain_layout(glacier_id, inventory, spec.dem.margin_m)
    outlines = [(r.role, int(r.year), r.geometry.wkb_hex) for r in rows.itertuples()]
    neighbours_ = sorted((r.glacier_id, r.geometry.wkb_hex) for r in others.itertuples())
    return fingerprint("glacier_domain", glacier_id, outlines, neighbours_, list(grid.bounds), grid.res,
                       ICE_ALLOWED_BUFFER_M, DEM_VOID_FILL_MAX_PCT, input_parts(spec.dem), input_parts(spec.forcing))


def _pct(fraction: float) -> str:
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
                f"glacier {glacier_id}: the DEM {dem_name} leaves {_pct(share)} of its {dem.shape[0]}x{dem.shape[1]}-"
                f"cell model domain without data ({int(void.sum())} cells; at most {max_pct:g} % are filled): "
                "it does not cover the glacier and its margin")
    else:
        share = float(void[required].mean())
        if 100.0 * share > max_pct:
            raise GlacierError(
                f"glacier {glacier_id}: the DEM {dem_name} does not cover the glacier: {_pct(share)} of the "
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
    profiles, info = _forcing_profiles(spec, centroid, dem, initial_mask)
    filled_pct = 100.0 * n_filled / dem.size
    dem_flag = (f"the DEM covers {_pct(1 - n_filled / dem.size)} of the domain; the rest, beyond the glacier's "
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
    from .inventory.reference import read_geodetic_table

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


def _thickness(sim_path: Path, glacier_id: str, year: int,
               out_path: Path) -> tuple[dict, np.ndarray | None, Grid | None]:
    """make_thickness, also returning the thickness as the file holds it (float64, ice-free 0)."""
    thk, grid = SimulationFile(sim_path, glacier_id).thickness(year)
    product = cropped_thickness(thk, grid, REFINE)
    if product is None:
        remove_product(out_path)
        return {"path": None, "vanished": True, "area_km2": 0.0, "volume_km3": 0.0}, None, None
    fine, fgrid = product
    data = np.where(fine > 0, fine, THICKNESS_NODATA).astype("float32")
    write_cog(out_path, data, fgrid, THICKNESS_NODATA, "float32")
    figures = {
        "path": str(out_path),
        "vanished": False,
        "crs": fgrid.crs,
        "shape": list(fgrid.shape),
        "resolution_m": fgrid.res,
        "area_km2": round(glaciated_area_km2(fine, fgrid.cell_area_m2), 5),
        "volume_km3": round(volume_km3(fine, fgrid.cell_area_m2), 6),
        "max_thickness_m": round(float(fine.max()), 2),
    }
    return figures, _as_read(data, THICKNESS_NODATA), fgrid


def make_thickness(sim_path: Path, glacier_id: str, year: int, out_path: Path) -> dict:
    """25 m thickness: bilinear from the 100 m simulation within its ice cells (`science/resample.py`),
    cropped to the non-zero extent, written as a Cloud-Optimized GeoTIFF; ice-free cells inside the
    crop are nodata."""
    return _thickness(sim_path, glacier_id, year, out_path)[0]


def _as_read(data: np.ndarray, nodata: float) -> np.ndarray:
    """A thickness raster as read_thickness returns it: float64, nodata cells 0."""
    out = data.astype("float64")
    out[data == nodata] = 0.0
    return out


def read_thickness(path: Path) -> tuple[np.ndarray, Grid]:
    data, grid, nodata = read_raster(path)
    data = data.astype("float64")
    if nodata is not None:
        data[data == nodata] = 0.0
    return data, grid


def _mask(thk: np.ndarray | None, grid: Grid | None, glacier_id: str, code: int,
          out_path: Path) -> tuple[dict, np.ndarray | None]:
    """make_mask from a thickness raster in memory (None: no thickness); also returns the mask."""
    if thk is None or grid is None:
        remove_product(out_path)
        return {"path": None, "vanished": True, "area_km2": 0.0, "code": code}, None
    mask = glacier_mask(thk, code, ICE_THRESHOLD_M)
    if not mask.any():
        remove_product(out_path)
        return {"path": None, "vanished": True, "area_km2": 0.0, "code": code}, None
    write_cog(out_path, mask, grid, MASK_NODATA, "int32")
    return ({"path": str(out_path), "vanished": False, "crs": grid.crs, "shape": list(grid.shape), "code": code,
             "area_km2": round(float((mask != 0).sum() * grid.cell_area_m2 / 1e6), 5)}, mask)


def make_mask(thickness_path: Path | None, glacier_id: str, code: int, out_path: Path) -> dict:
    """Glacier mask: cells with thickness >= 2 m carry the glacier's unique code (int32 COG, nodata 0)."""
    if thickness_path is None or not Path(thickness_path).exists():
        return _mask(None, None, glacier_id, code, out_path)[0]
    thk, grid = read_thickness(thickness_path)
    return _mask(thk, grid, glacier_id, code, out_path)[0]


def make_epoch_products(sim_path: Path, glacier_id: str, year: int, code: int, thickness_path: Path,
                        mask_path: Path, outline_path: Path,
                        fingerprint_: str | None = None) -> tuple[dict, dict, dict]:
    """make_thickness, make_mask and make_outline of one glacier-epoch in one go: the same
    files and figures, but the mask is made from the thickness in memory and the outline from
    the mask in memory instead of reading back the files just written (each read ~3 ms)."""
    thk_figures, thk, grid = _thickness(sim_path, glacier_id, year, thickness_path)
    if grid is not None:
        grid = _as_written(grid)
    mask_figures, mask = _mask(thk, grid, glacier_id, code, mask_path)
    files = {k: file_record(p) for k, p in (("thickness", thickness_path), ("mask", mask_path)) if p.exists()}
    outline_figures = _outline(mask, grid, glacier_id, year, outline_path, fingerprint_, files)
    return thk_figures, mask_figures, outline_figures


def _as_written(grid: Grid) -> Grid:
    """The grid as read_raster reads it back from a GeoTIFF written on `grid` (rasterio's CRS string)."""
    from dataclasses import replace

    return replace(grid, crs=_crs_string(grid.crs))


_CRS_STRINGS: dict[str, str] = {}


def _crs_string(crs: str) -> str:
    if crs not in _CRS_STRINGS:
        _CRS_STRINGS[crs] = rasterio.crs.CRS.from_user_input(crs).to_string()
    return _CRS_STRINGS[crs]


OUTLINE_COLUMNS = ["glacier_id", "year", "code", "area_km2", "geometry"]


def _outline(mask: np.ndarray | None, grid: Grid | None, glacier_id: str, year: int, out_path: Path,
             fingerprint_: str | None = None, files: dict | None = None) -> dict:
    """make_outline from a mask in memory (None: no mask). With the fingerprint, `files` records the
    thickness and mask as written (`fingerprints.file_record`), for `ledger.product_problems`."""
    meta = {"fingerprint": fingerprint_, **({"files": files} if files is not None else {})} if fingerprint_ else {}
    if mask is None or grid is None:
        gdf = gpd.GeoDataFrame([{"glacier_id": glacier_id, "year": year, "code": 0, "area_km2": 0.0,
                                 "geometry": None}], columns=OUTLINE_COLUMNS, geometry="geometry",
                               crs=GEOGRAPHIC_CRS)
        write_geoparquet(out_path, gdf, {**meta, "vanished": True})
        return {"path": str(out_path), "vanished": True, "area_km2": 0.0}
    polys = mask_to_polygons(mask, grid.transform)
    if len(polys) != 1:
        raise GlacierError(f"glacier {glacier_id} {year}: mask holds codes {sorted(polys)}, expected one")
    code, geom = next(iter(polys.items()))
    gdf = gpd.GeoDataFrame([{"glacier_id": glacier_id, "year": year, "code": code,
                             "area_km2": geom.area / 1e6, "geometry": geom}],
                           columns=OUTLINE_COLUMNS, geometry="geometry", crs=grid.crs)
    write_geoparquet(out_path, gdf, {**meta, "vanished": False})
    return {"path": str(out_path), "vanished": False, "crs": grid.crs, "area_km2": round(geom.area / 1e6, 5),
            "n_polygons": len(geom.geoms), "n_holes": sum(len(p.interiors) for p in geom.geoms)}


def make_outline(mask_path: Path | None, glacier_id: str, year: int, out_path: Path,
                 fingerprint_: str | None = None) -> dict:
    """Outline: the mask vectorized (holes kept); area from the geometry (UTM, GeoParquet).
    A glacier with no ice left gets a row with an empty geometry, so "vanished" and "not made
    yet" stay distinguishable. `fingerprint_`, written into the file, says that the epoch's
    thickness, mask and outline were all made from one simulation (see ledger.py)."""
    if mask_path is None or not Path(mask_path).exists():
        return _outline(None, None, glacier_id, year, out_path, fingerprint_)
    mask, grid, _ = read_raster(mask_path)
    return _outline(mask, grid, glacier_id, year, out_path, fingerprint_)


def make_regional_outlines(outline_paths: list[Path], year: int, albers: str, shp_path: Path,
                           parquet_path: Path, initial: dict | None = None, fingerprint_: str | None = None) -> dict:
    """All glaciers of one epoch in one file, reprojected to the Albers equal-area projection
    (glaciers with no ice left at the epoch have no row), as a mosaic: where touching glaciers'
    simulated outlines overlap, the overlap goes to the glacier whose initial outline is nearer
    (`science.zones.mosaic`; `initial` maps glacier ids to their initial outlines, EPSG:4326), so
    no ground is counted twice and none is lost. The figures give the area the glaciers' own
    outlines count twice (`mosaicked_overlap_km2`) and the pairs that still overlap (none when
    `initial` is given)."""
    parts = [g.to_crs(albers) for g in read_outline_files(outline_paths)]
    parts = [g[~(g.geometry.isna() | g.geometry.is_empty)] for g in parts]
    if parts:
        gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=albers)
    else:
        gdf = gpd.GeoDataFrame(columns=OUTLINE_COLUMNS, geometry="geometry", crs=albers)
    gdf = gdf.sort_values("glacier_id").reset_index(drop=True)
    _, twice_km2 = overlaps(gdf.geometry)
    if initial is not None and len(gdf) > 1:
        ids = list(gdf["glacier_id"])
        first = gpd.GeoSeries([initial[g] for g in ids], crs=GEOGRAPHIC_CRS).to_crs(albers)
        tiled = mosaic(dict(zip(ids, gdf.geometry)), dict(zip(ids, first)))
        gdf["geometry"] = [tiled[g] for g in ids]
        gdf = gdf[~gdf.geometry.is_empty].reset_index(drop=True)  # all its ice nearer a neighbour's outline
    gdf["year"] = year
    gdf["area_km2"] = gdf.geometry.area / 1e6
    write_shapefile(shp_path, gdf)
    write_geoparquet(parquet_path, gdf, {"fingerprint": fingerprint_} if fingerprint_ else None)
    return {**regional_figures(gdf, albers, shp_path, parquet_path), "mosaicked_overlap_km2": round(twice_km2, 5),
            "table": gdf}


def read_outline_files(paths: list[Path]) -> list[gpd.GeoDataFrame]:
    """Outline GeoParquet files (make_outline's) as GeoDataFrames, one per CRS (in the order of the
    CRSs' first files), their rows in file order: what reading each with gpd.read_parquet and
    concatenating those of one CRS gives, but the CRS is parsed once per CRS instead of once per
    file (pyproj takes ~6 ms to parse a file's PROJJSON, more than the rest of the reading). Files
    whose columns differ are read one by one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    groups: dict[str, list] = {}
    for p in paths:
        table = pq.read_table(p)
        geo = json.loads((table.schema.metadata or {}).get(b"geo", b"{}") or b"{}")
        column = geo.get("primary_column")
        meta = geo.get("columns", {}).get(column, {})
        if column is None or meta.get("encoding") != "WKB" or len(geo.get("columns", {})) != 1:
            groups.setdefault(f"file:{p}", []).append((p, None, None, None))  # anything else: geopandas
            continue
        crs = meta.get("crs", "OGC:CRS84")
        groups.setdefault(json.dumps(crs, sort_keys=True), []).append((p, table, column, crs))
    out = []
    for members in groups.values():
        if members[0][1] is None:
            out.append(gpd.read_parquet(members[0][0]))
            continue
        column, crs = members[0][2], members[0][3]
        try:
            table = pa.concat_tables([t for _, t, _, _ in members])
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # columns differ: as geopandas reads them
            out.append(gpd.GeoDataFrame(pd.concat([gpd.read_parquet(p) for p, *_ in members])))
            continue
        df = table.drop([column]).to_pandas()
        if isinstance(crs, dict):  # PROJJSON, as written by this PROJ: parsed once per group
            crs = pyproj.CRS.from_json_dict(crs)
        df.insert(table.column_names.index(column), column,
                  gpd.array.from_wkb(np.array(table[column]), crs=crs))
        out.append(gpd.GeoDataFrame(df, geometry=column))
    return out


def regional_figures(table: gpd.GeoDataFrame, crs: str, shp_path: Path, parquet_path: Path) -> dict:
    """What a regional outline file holds: its paths, CRS, glaciers, area, and the pairs of
    glaciers that overlap with the area they count twice."""
    n_pairs, twice_km2 = overlaps(table.geometry)
    return {"path": str(shp_path), "geoparquet": str(parquet_path), "crs": crs,
            "n_glaciers": len(table), "area_km2": round(float(table["area_km2"].sum()), 4),
            "overlapping_pairs": n_pairs, "overlap_area_km2": round(twice_km2, 5)}


__all__ = [
    "EPOCHS", "GlacierError", "make_domain", "make_thickness", "make_mask", "make_outline", "make_epoch_products",
    "make_regional_outlines",
]


# --- region-wide reports ---------------------------------------------------------------------------

REPORT_COLUMNS = ["glacier_id", "role", "epoch", "obs_year", "model_time", "obs_area_km2", "sim_area_km2",
                  "rel_diff_pct", "iou", "d_ela_m", "shift_flag", "iterations", "status", "glacier_status",
                  "loo_area_km2", "loo_rel_diff_pct", "volume_km3", "reference_volume_km3", "reference_year",
                  "ceiling_iou", "tongue_covered", "z_terminus_m", "z_outline_min_m", "shape_flag"]


def domain_surface(path: Path) -> np.ndarray | None:
    """The surface elevation of a glacier's model domain (its DEM on the model grid), None if absent."""
    if not Path(path).exists():
        return None
    with xr.open_dataset(path) as dom:
        return dom["dem"].values


def calibration_rows(rows: gpd.GeoDataFrame, sim_path: Path, reference: tuple[float, int, str] | None,
                     dem: np.ndarray | None = None) -> list[dict]:
    """Simulated vs observed area and mask overlap (IoU, at 25 m) for every outline, at the
    outline's own model time (its year + 1), not at the nearest epoch; the area predicted for it
    when it was left out of the calibration; the volume, and the glacier's reference volume.
    Where the ice is (science/shape.py): the IoU's ceiling on the model grid, and, given the
    model grid's surface `dem`, the share of the outline's tongue (lowest fifth) under ice, the
    simulated terminus elevation against the outline's lowest point, and the shape flag."""

    from .science.quality import iou
    from .science.resample import bilinear_refine
    from .science.shape import outline_shape

    gid = rows["glacier_id"].iloc[0]
    sim = SimulationFile(sim_path, gid).load()
    grid, thk, glacier_status = sim.grid, sim.outlines, sim.status
    calibration = {int(r["obs_year"]): r for r in sim.calibration}
    loo = {int(r["obs_year"]): r for r in sim.validation}
    fine = grid.refined(REFINE)
    fine_dem = None if dem is None else bilinear_refine(np.asarray(dem, "float64"), REFINE)
    out = []
    for _, r in rows.sort_values("year").iterrows():
        year = int(r["year"])
        t = outline_model_time(year)
        if t not in thk:
            continue
        sim_thk = refined_thickness(thk[t], REFINE)
        sim_mask = sim_thk >= ICE_THRESHOLD_M
        geom = gpd.GeoSeries([r.geometry], crs=GEOGRAPHIC_CRS).to_crs(grid.crs).iloc[0]
        obs_mask = rasterize([geom], fine)
        sim_area = glaciated_area_km2(sim_thk, fine.cell_area_m2)
        overlap = iou(sim_mask, obs_mask)
        where = outline_shape(sim_mask, obs_mask, rasterize([geom], grid), fine_dem, overlap)
        cal = calibration.get(year, {})
        out.append({
            "glacier_id": gid, "role": r["role"], "epoch": int(r["epoch"]), "obs_year": year, "model_time": t,
            "obs_area_km2": float(r["area_km2"]), "sim_area_km2": sim_area,
            "rel_diff_pct": 100.0 * (sim_area - r["area_km2"]) / r["area_km2"],
            "iou": overlap, "d_ela_m": cal.get("d_ela_m", np.nan),
            "shift_flag": cal.get("shift_flag", ""),
            "iterations": cal.get("iterations", 0), "status": cal.get("status", "uncalibrated"),
            "glacier_status": glacier_status,
            "loo_area_km2": loo.get(year, {}).get("predicted_area_km2", np.nan),
            "loo_rel_diff_pct": loo.get(year, {}).get("rel_diff_pct", np.nan),
            "volume_km3": volume_km3(thk[t], grid.cell_area_m2),
            "reference_volume_km3": np.nan if reference is None else reference[0],
            "reference_year": np.nan if reference is None else reference[1],
            **where,
        })
    return out


AUDIT_COLUMNS = ["glacier_id", "epoch", "outline_present", "vanished", "thickness_ok", "thickness_finite",
                 "thickness_min_m",
                 "thickness_max_m", "off_glacier_zero", "mask_codes_ok", "mask_area_km2", "outline_area_km2",
                 "mask_outline_diff_pct", "outline_valid", "outline_crs_ok", "problem"]


def _border_ring(shape: tuple[int, int]) -> np.ndarray:
    ring = np.zeros(shape, bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return ring


def audit_glacier(glacier_id: str, code: int, paths: dict) -> list[dict]:
    """Sanity of one glacier's products at every epoch: thickness finite, >= 0, plausible, zero on
    the model domain's border (off the glacier); mask codes; mask vs outline area; outline
    geometry and CRS. `paths` maps "simulation" to a path and "thickness"/"mask"/"outline" to
    functions of the year. A file that is missing or cannot be read fails its row, with the file
    and the problem in `problem`."""
    rows = []
    sim_crs, border_ok = None, {}
    if Path(paths["simulation"]).exists():
        sim = SimulationFile(paths["simulation"], glacier_id).load()
        sim_crs, ring = sim.crs, _border_ring(sim.grid.shape)
        border_ok = {t: bool((thk[ring] == 0).all()) for t, thk in sim.epochs.items()}
    for year in EPOCHS:
        row: dict[str, Any] = dict.fromkeys(AUDIT_COLUMNS)
        row.update(glacier_id=glacier_id, epoch=year, off_glacier_zero=border_ok.get(year, False), problem="")
        try:
            _audit_epoch(row, year, code, sim_crs, paths)
        except _Unreadable as exc:  # a damaged file fails its glacier-epoch, named; never the audit
            row.update(outline_present=row["outline_present"] or False, thickness_ok=False, mask_codes_ok=False,
                       outline_valid=False, outline_crs_ok=False, problem=str(exc))
        rows.append(row)
    return rows


class _Unreadable(Exception):
    pass


def _read(kind: str, path: Path, reader):
    try:
        return reader(path)
    except Exception as exc:  # noqa: BLE001 - whatever the reader says, the file is the problem
        raise _Unreadable(f"{kind} {path.name}: cannot be read ({' '.join(str(exc).split())[:200]})") from None


def _audit_epoch(row: dict, year: int, code: int, sim_crs: str | None, paths: dict) -> None:
    from .constants import THICKNESS_MAX_M

    outline_path = Path(paths["outline"](year))
    row["outline_present"] = outline_path.exists()
    if not row["outline_present"]:
        row["problem"] = f"outline {outline_path.name}: missing"
        return
    outline = _read("outline", outline_path, gpd.read_parquet)
    geom = outline.geometry.iloc[0]
    row["vanished"] = geom is None or geom.is_empty
    row["outline_crs_ok"] = row["vanished"] or (outline.crs is not None and outline.crs.to_string() == sim_crs)
    row["outline_valid"] = row["vanished"] or bool(geom.is_valid)
    row["outline_area_km2"] = 0.0 if row["vanished"] else geom.area / 1e6
    thk_path = Path(paths["thickness"](year))
    if thk_path.exists():
        data, _, nodata = _read("thickness", thk_path, read_raster)
        valid = data[data != nodata] if nodata is not None else data.ravel()
        row["thickness_finite"] = bool(np.isfinite(valid).all())
        row["thickness_min_m"] = float(valid.min()) if valid.size else 0.0
        row["thickness_max_m"] = float(valid.max()) if valid.size else 0.0
    else:
        row.update(thickness_finite=row["vanished"], thickness_min_m=0.0, thickness_max_m=0.0)
        if not row["vanished"]:
            row["problem"] = f"thickness {thk_path.name}: missing"
    mask_path = Path(paths["mask"](year))
    if mask_path.exists():
        mask, grid, _ = _read("mask", mask_path, read_raster)
        row["mask_codes_ok"] = set(np.unique(mask)) <= {0, code}
        row["mask_area_km2"] = float((mask != 0).sum() * grid.cell_area_m2 / 1e6)
    else:
        row.update(mask_codes_ok=row["vanished"], mask_area_km2=0.0)
        if not row["vanished"]:
            row["problem"] = f"mask {mask_path.name}: missing"
    m, o = row["mask_area_km2"], row["outline_area_km2"]
    row["mask_outline_diff_pct"] = 0.0 if m == o == 0 else 100.0 * abs(o - m) / max(m, 1e-12)
    row["thickness_ok"] = (row["thickness_finite"] and row["thickness_min_m"] >= 0
                           and row["thickness_max_m"] <= THICKNESS_MAX_M)


def published_outline_table(paths: list[Path]) -> gpd.GeoDataFrame:
    """Every regional outline file (all epochs) as one table, the attributes people filter on."""
    parts = [gpd.read_parquet(p) for p in paths if Path(p).exists()]
    if not parts:
        return gpd.GeoDataFrame(columns=OUTLINE_COLUMNS, geometry="geometry")
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=parts[0].crs)


# --- the regional rheology: one factor, calibrated to reference volumes ---------------------------


def _forcing_profiles(spec: RegionSpec, lonlat, dem: np.ndarray, outline: np.ndarray):
    z = elevation_bins(float(np.nanmin(dem)), float(np.nanmax(dem)))
    if isinstance(spec.forcing, ElaTableForcing):
        return ela_table_profiles(spec.forcing, z)
    return climate_profiles(spec.forcing, lonlat.x, lonlat.y, z, target_ela=float(np.median(dem[outline])))


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
    profiles, _ = _forcing_profiles(spec, point, dem, mask)
    return InversionInputs.from_surface(dem, mask, np.interp(dem, profiles.z, profiles.b.mean(axis=0)), grid.res)


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


# --- fingerprints of today's inputs ------------------------------------------------------------------


def expected_fingerprints(inventory: gpd.GeoDataFrame, spec: RegionSpec, emulator_fp: str | None,
                          settings: dict | None, glacier_ids: list[str] | None = None) -> dict[str, dict]:
    """Glacier -> {"domain", "simulation"}: the fingerprints its domain and simulation would have
    if made from today's inputs (None when the domain cannot be laid out, and the simulation's
    when there are no `settings`: no rheology yet)."""
    from .fingerprints import simulation_fingerprint

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


# --- judging a real glacier against independent observations ---------------------------------------


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
    from .science.skill import thickness_skill

    thk, grid, when = simulated_thickness_at(sim_path, year)
    return {**thickness_skill(thk, reproject_raster(str(observed_tif), grid)), "model_time": when}


def simulated_geodetic_balance(sim_path: Path, start: int, end: int) -> dict:
    """From one read of a simulation: its mean specific balance from the start of `start` to the
    start of `end` (`simulated_mb_mwe`, m w.e. a-1, made as a geodetic one is:
    `science.skill.series_geodetic_balance`; NaN outside the simulated years), its mean area over
    the period (`mean_area_km2`) and how its balance was calibrated to a geodetic one
    (`mb_calibration`, e.g. "balance_gradient_factor 1.153 from 2000, converged"; "" if not)."""
    from .science.skill import series_geodetic_balance

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
    from .science.skill import mass_balance_skill

    return mass_balance_skill(simulated_mass_balance(sim_path), read_wgms_balance(wgms_csv))
