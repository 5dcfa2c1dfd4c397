"""Atomic writes of the open formats the products use (GeoTIFF/COG, NetCDF, GeoParquet, Shapefile).

Every writer writes beside the target under a temporary name and renames it into place, so a
reader (or a crash) never sees half a file, and a failed write leaves the previous product as it
was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import geopandas as gpd
import numpy as np
import rasterio
import xarray as xr

from .science.grids import Grid

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


@contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_cog(path: str | Path, data: np.ndarray, grid: Grid, nodata: float | int, dtype: str) -> Path:
    """Cloud-Optimized GeoTIFF (DEFLATE; float predictor for floats), written atomically."""
    predictor = 3 if np.dtype(dtype).kind == "f" else 2
    with atomic_path(path) as tmp:
        with rasterio.open(
            tmp, "w", driver="COG", width=grid.width, height=grid.height, count=1, dtype=dtype,
            crs=grid.crs, transform=grid.transform, nodata=nodata, compress="DEFLATE",
            predictor=predictor, blocksize=512,
        ) as dst:
            dst.write(data.astype(dtype), 1)
    return Path(path)


def read_raster(path: str | Path) -> tuple[np.ndarray, Grid, float | None]:
    with rasterio.open(path) as src:
        t = src.transform
        grid = Grid(src.crs.to_string(), t.c, t.f, t.a, src.width, src.height)
        return src.read(1), grid, src.nodata


def write_netcdf(path: str | Path, ds: xr.Dataset) -> Path:
    encoding = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars if ds[v].ndim >= 2}
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return Path(path)


def write_geoparquet(path: str | Path, gdf: gpd.GeoDataFrame) -> Path:
    with atomic_path(path, suffix=".parquet") as tmp:
        gdf.to_parquet(tmp, index=False)
    return Path(path)


def write_shapefile(path: str | Path, gdf: gpd.GeoDataFrame) -> Path:
    """All parts of a shapefile are written to a temporary folder, then renamed into place
    (.shp last, so a reader that finds the .shp finds its companions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        gdf.to_file(tmpdir / path.name, engine="pyogrio", driver="ESRI Shapefile")
        parts = sorted(tmpdir.iterdir(), key=lambda p: p.suffix == ".shp")
        for part in parts:
            os.replace(part, path.with_suffix(part.suffix))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def remove_product(path: str | Path) -> None:
    """Remove a product file (and a shapefile's companions) if present."""
    path = Path(path)
    targets = [path.with_suffix(s) for s in SHAPEFILE_PARTS] if path.suffix == ".shp" else [path]
    for t in targets:
        if t.exists():
            t.unlink()
