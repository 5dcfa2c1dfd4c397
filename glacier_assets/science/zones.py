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
    least as near to `own` as to any neighbour (a tie goes to the lower code)."""
    mine = burn(own, grid)
    labels = np.zeros(grid.shape, np.int64)
    for geom, code in sorted(others, key=lambda gc: -gc[1]):  # where neighbours overlap, the lowest code is burnt last
        labels[burn(geom, grid)] = code
    if not labels.any():
        return np.ones(grid.shape, bool)
    if not mine.any():
        return np.zeros(grid.shape, bool)
    d_own = distance_transform_edt(~mine)
    d_other, (rows, cols) = distance_transform_edt(labels == 0, return_indices=True)
    nearest_other = labels[rows, cols]
    return (d_own < d_other) | ((d_own == d_other) & (own_code < nearest_other))
