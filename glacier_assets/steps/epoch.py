"""The products of one glacier at one epoch, each from the one before: the 25 m thickness (COG) from
the simulation, the mask from the thickness, the outline (GeoParquet) from the mask."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio

from ..constants import (
    GEOGRAPHIC_CRS,
    ICE_THRESHOLD_M,
    MASK_NODATA,
    REFINE,
    THICKNESS_NODATA,
)
from ..errors import GlacierError
from ..fingerprints import file_record
from ..science.grids import Grid
from ..science.masks import glaciated_area_km2, glacier_mask, volume_km3
from ..science.resample import cropped_thickness
from ..science.vectorize import mask_to_polygons
from ..simulation_file import SimulationFile
from ..storage import read_raster, remove_product, write_cog, write_geoparquet


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


__all__ = ["OUTLINE_COLUMNS", "make_epoch_products", "make_mask", "make_outline", "make_thickness", "read_thickness"]
