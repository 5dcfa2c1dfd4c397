"""Model grid (100 m) to product grid (25 m): bilinear resampling and cropping to the valid extent."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from ..constants import PRODUCT_RESOLUTION_M
from .grids import Grid
from .masks import glaciated_area_km2


def bilinear_refine(field: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear interpolation of cell-centred `field` onto a grid `factor` times finer, same extent.

    The centre of fine cell i lies at coarse index (i + 0.5) / factor - 0.5; values beyond the
    outermost coarse centres take the edge value (the model grid has an ice-free border, so the
    edge is zero thickness in practice).
    """
    if factor < 1:
        raise ValueError("factor must be >= 1")
    ny, nx = field.shape
    rows = (np.arange(ny * factor) + 0.5) / factor - 0.5
    cols = (np.arange(nx * factor) + 0.5) / factor - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return map_coordinates(field.astype("float64"), [rr, cc], order=1, mode="nearest")


def product_thickness(thk_model: np.ndarray, factor: int) -> np.ndarray:
    """Thickness on the product grid as published: bilinear from the model grid (`factor` times
    finer), negative values clipped to 0. Every product and every area figure starts here."""
    return bilinear_refine(np.clip(thk_model, 0.0, None), factor)


def product_area_km2(thk_model: np.ndarray, model_res: float, product_res: float = PRODUCT_RESOLUTION_M) -> float:
    """Glacier area exactly as the published product counts it: bilinear from the model grid to
    the product grid, cells with thickness >= 2 m, times the product cell area."""
    factor = int(round(model_res / product_res))
    return glaciated_area_km2(product_thickness(thk_model, factor), (model_res / factor) ** 2)


def valid_window(valid: np.ndarray) -> tuple[int, int, int, int] | None:
    """Row/column bounds [row0, row1, col0, col1) of the True cells, or None if there are none."""
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def thickness_product(thk_model: np.ndarray, grid: Grid, factor: int) -> tuple[np.ndarray, Grid] | None:
    """Published thickness: bilinear to the fine grid, cropped to the non-zero extent.

    Returns the cropped array (cells with zero thickness inside the crop stay 0) and its grid,
    or None when the glacier has no ice at all.
    """
    fine = product_thickness(thk_model, factor)
    win = valid_window(fine > 0.0)
    if win is None:
        return None
    r0, r1, c0, c1 = win
    return fine[r0:r1, c0:c1], grid.refined(factor).window(r0, r1, c0, c1)
