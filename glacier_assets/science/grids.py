"""Regular north-up grids in projected CRSs: UTM zone choice, glacier domains, reprojection."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: `xmin`/`ymax` are the outer edges, rows run from north to south."""

    crs: str
    xmin: float
    ymax: float
    res: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, self.xmin, 0.0, -self.res, self.ymax)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def xmax(self) -> float:
        return self.xmin + self.width * self.res

    @property
    def ymin(self) -> float:
        return self.ymax - self.height * self.res

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.xmin, self.ymin, self.xmax, self.ymax)

    @property
    def x(self) -> np.ndarray:
        """Cell-centre easting, west to east."""
        return self.xmin + (np.arange(self.width) + 0.5) * self.res

    @property
    def y(self) -> np.ndarray:
        """Cell-centre northing, north to south (row order)."""
        return self.ymax - (np.arange(self.height) + 0.5) * self.res

    @property
    def cell_area_m2(self) -> float:
        return self.res * self.res

    def refined(self, factor: int) -> Grid:
        """The same extent at `res / factor` (e.g. 100 m -> 25 m with factor 4)."""
        return Grid(self.crs, self.xmin, self.ymax, self.res / factor, self.width * factor, self.height * factor)

    def window(self, row0: int, row1: int, col0: int, col1: int) -> Grid:
        """Sub-grid of rows [row0, row1) and columns [col0, col1)."""
        return Grid(
            self.crs,
            self.xmin + col0 * self.res,
            self.ymax - row0 * self.res,
            self.res,
            col1 - col0,
            row1 - row0,
        )

    @classmethod
    def from_xy(cls, crs: str, x: np.ndarray, y: np.ndarray) -> Grid:
        """Rebuild a grid from cell-centre coordinates (y descending or ascending)."""
        res = float(abs(x[1] - x[0]))
        return cls(crs, float(x.min()) - res / 2, float(y.max()) + res / 2, res, len(x), len(y))


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS84 UTM zone that holds a point, as an EPSG code string (326xx north, 327xx south)."""
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise ValueError(f"longitude/latitude ({lon}, {lat}) outside the UTM domain")
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def snapped_grid(crs: str, bounds: tuple[float, float, float, float], res: float, border_cells: int) -> Grid:
    """Grid aligned to multiples of `res` that covers `bounds` plus `border_cells` on every side."""
    xmin, ymin, xmax, ymax = bounds
    x0 = (math.floor(xmin / res) - border_cells) * res
    x1 = (math.ceil(xmax / res) + border_cells) * res
    y0 = (math.floor(ymin / res) - border_cells) * res
    y1 = (math.ceil(ymax / res) + border_cells) * res
    return Grid(crs, x0, y1, res, int(round((x1 - x0) / res)), int(round((y1 - y0) / res)))


def reproject_raster(
    src_path: str,
    grid: Grid,
    resampling: Resampling = Resampling.bilinear,
    band: int = 1,
) -> np.ndarray:
    """Read band `band` of a raster in any CRS onto `grid`; cells the source does not cover are NaN."""
    with rasterio.open(src_path) as src:
        data = src.read(band).astype("float64")
        if src.nodata is not None:
            data[data == src.nodata] = np.nan
        return reproject_array(data, src.transform, src.crs, grid, resampling)


def reproject_array(data: np.ndarray, transform, crs, grid: Grid, resampling: Resampling) -> np.ndarray:
    """An array on the lattice (`transform`, `crs`) onto `grid`; cells it does not cover are NaN."""
    out = np.full(grid.shape, np.nan, dtype="float64")
    reproject(source=data, destination=out, src_transform=transform, src_crs=crs, src_nodata=np.nan,
              dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan, resampling=resampling)
    return out


def reproject_tiles(paths: list[str], grid: Grid, resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """Several raster tiles onto `grid`: mosaicked in their own CRS first (where they overlap the
    first one wins), so cells along a seam are resampled from both; tiles in different CRSs are
    reprojected one by one instead (the first with data wins)."""
    from rasterio.merge import merge
    from rasterio.warp import transform_bounds

    crss = set()
    for path in paths:
        with rasterio.open(path) as src:
            crss.add(src.crs.to_string())
    if len(paths) == 1 or len(crss) > 1:
        out = np.full(grid.shape, np.nan)
        for path in paths:
            out = np.where(np.isfinite(out), out, reproject_raster(path, grid, resampling))
        return out
    with rasterio.open(paths[0]) as src:
        crs, (x0, dx), (y0, dy) = src.crs, (src.transform.c, src.transform.a), (src.transform.f, -src.transform.e)
    w, s, e, n = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
    # the window on the first tile's pixel lattice, two pixels wider: merging reads, never shifts
    w, e = x0 + (math.floor((w - x0) / dx) - 2) * dx, x0 + (math.ceil((e - x0) / dx) + 2) * dx
    n, s = y0 - (math.floor((y0 - n) / dy) - 2) * dy, y0 - (math.ceil((y0 - s) / dy) + 2) * dy
    data, transform = merge(list(paths), bounds=(w, s, e, n), res=(dx, dy), nodata=np.nan, dtype="float64")
    return reproject_array(data[0], transform, crs, grid, resampling)
