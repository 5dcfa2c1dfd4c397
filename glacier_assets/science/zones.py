"""Nearest-glacier zones: a partition of space between glaciers, so that touching glaciers never
claim the same ice.

Every point belongs to the glacier whose outline is nearest (distance 0 inside an outline); a tie
goes to the lower glacier code. The rule depends only on the outlines, so each glacier's share can
be computed on its own grid and the shares of neighbours still tile the ground without overlap on
a common lattice (the published masks are then a mosaic of coded masks, as in the dataset).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rasterio.features import rasterize
from scipy.ndimage import distance_transform_edt

from .grids import Grid


def burn(geometry, grid: Grid) -> np.ndarray:
    """Cells of `grid` whose centre lies in `geometry`; a polygon too thin to hold a cell centre
    gets the cells it touches, so that every glacier keeps a seed."""
    if geometry is None or geometry.is_empty:
        return np.zeros(grid.shape, bool)
    cells = rasterize([(geometry, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8")
    if not cells.any():
        cells = rasterize([(geometry, 1)], out_shape=grid.shape, transform=grid.transform, fill=0,
                          dtype="uint8", all_touched=True)
    return cells.astype(bool)


def owned_cells(grid: Grid, own, own_code: int, others: Sequence[tuple[object, int]]) -> np.ndarray:
    """Boolean mask of the cells of `grid` that belong to the glacier with outline `own` (in the
    grid's CRS) and code `own_code`, given its neighbours' `(outline, code)` pairs: the cells at
    least as near to `own` as to any neighbour, a tie going to the lowest code of all the glaciers
    at that distance (distances between cell centres, so neighbours computed on any window of the
    same lattice agree)."""
    mine = burn(own, grid)
    if not mine.any():
        return np.zeros(grid.shape, bool)
    nearest = np.full(grid.shape, np.inf)  # the nearest neighbour's distance and code, per cell
    nearest_code = np.full(grid.shape, np.iinfo(np.int64).max)
    for geom, code in others:
        cells = burn(geom, grid)
        if not cells.any():
            continue
        d = distance_transform_edt(~cells)
        closer = (d < nearest) | ((d == nearest) & (code < nearest_code))
        nearest, nearest_code = np.where(closer, d, nearest), np.where(closer, code, nearest_code)
    d_own = distance_transform_edt(~mine)
    return (d_own < nearest) | ((d_own == nearest) & (own_code < nearest_code))
