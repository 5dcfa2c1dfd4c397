"""Is the simulated ice where the observed outline is? Shape figures of one glacier at one outline
date, on boolean masks of one grid (issue 25): the IoU's ceiling on the model grid, the share of
the outline's lowest fifth (by elevation: its tongue) under simulated ice, the simulated
terminus elevation, and the flag a glaciologist would raise."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..constants import SHAPE_FLAG_IOU, SHAPE_FLAG_TONGUE


def lowest_fifth(obs: np.ndarray, dem: np.ndarray) -> np.ndarray:
    """The cells of the outline `obs` in its lowest fifth by surface elevation: its tongue."""
    obs = obs.astype(bool)
    if not obs.any():
        return obs
    return obs & (dem <= np.quantile(dem[obs], 0.2))


def tongue_coverage(ice: np.ndarray, obs: np.ndarray, dem: np.ndarray) -> float:
    """The share (0-1) of the outline's lowest fifth covered by simulated ice (nan: no outline)."""
    low = lowest_fifth(obs, dem)
    n = np.count_nonzero(low)
    return float("nan") if n == 0 else float(np.count_nonzero(low & ice.astype(bool)) / n)


def main_body(ice: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """The connected piece of simulated ice (8-neighbours) that overlaps the outline most."""
    labels, n = ndimage.label(ice.astype(bool), structure=np.ones((3, 3)))
    if n == 0:
        return ice.astype(bool)
    overlap = ndimage.sum(obs.astype(bool), labels, index=np.arange(1, n + 1))
    return labels == 1 + int(np.argmax(overlap))


def lowest_elevation(mask: np.ndarray, dem: np.ndarray) -> float:
    """The lowest surface elevation in `mask` (nan: an empty mask)."""
    mask = mask.astype(bool)
    return float(dem[mask].min()) if mask.any() else float("nan")


def terminus_elevation(ice: np.ndarray, obs: np.ndarray, dem: np.ndarray) -> float:
    """The lowest surface elevation under the glacier's main body of simulated ice (nan: no ice)."""
    return lowest_elevation(main_body(ice, obs), dem)


def grid_ceiling(obs_coarse: np.ndarray, obs_fine: np.ndarray) -> float:
    """The best IoU a model grid allows: the outline rasterized on it (`obs_coarse`), refined by
    repeating cells, against the outline rasterized on the fine grid (`obs_fine`)."""
    r = obs_fine.shape[0] // obs_coarse.shape[0]
    coarse = np.kron(obs_coarse.astype(bool), np.ones((r, r), bool))
    union = np.count_nonzero(coarse | obs_fine.astype(bool))
    return 1.0 if union == 0 else float(np.count_nonzero(coarse & obs_fine.astype(bool)) / union)


def shape_flag(iou: float, tongue: float) -> str:
    """Why a glacier's simulated shape is not trusted at an outline date ("" if it is): an IoU
    below `SHAPE_FLAG_IOU`, or less than `SHAPE_FLAG_TONGUE` of the outline's tongue under ice."""
    def down(x: float) -> float:  # 2 decimals rounded down: 0.4995 is "0.49 < 0.50", not "0.50 < 0.50"
        return math.floor(x * 100) / 100

    why = []
    if np.isfinite(iou) and iou < SHAPE_FLAG_IOU:
        why.append(f"IoU {down(iou):.2f} < {SHAPE_FLAG_IOU:.2f}")
    if np.isfinite(tongue) and tongue < SHAPE_FLAG_TONGUE:
        why.append(f"tongue covered {down(tongue):.2f} < {SHAPE_FLAG_TONGUE:.2f}")
    return ", ".join(why)


def outline_shape(ice: np.ndarray, obs: np.ndarray, obs_coarse: np.ndarray, dem: np.ndarray | None,
                  overlap: float) -> dict:
    """The shape figures of one outline date (the calibration report's columns): the IoU's ceiling
    on the model grid (`obs_coarse`: the outline rasterized on it), and given the surface `dem` on
    the fine grid (else NaN) the tongue covered, the simulated terminus and the outline's lowest
    elevation; the flag from those and the IoU `overlap`."""
    if dem is None:
        tongue = z_term = z_low = float("nan")
    else:
        tongue, z_term, z_low = tongue_coverage(ice, obs, dem), terminus_elevation(ice, obs, dem), \
            lowest_elevation(obs, dem)
    return {"ceiling_iou": grid_ceiling(obs_coarse, obs), "tongue_covered": tongue, "z_terminus_m": z_term,
            "z_outline_min_m": z_low, "shape_flag": shape_flag(overlap, tongue)}


def path_distances(allowed: np.ndarray, start: tuple[int, int], res: float) -> np.ndarray:
    """Distance (m) from cell `start` to every cell of `allowed`, along paths of 8-neighbour steps
    through it (a valley's length, round its bends); inf where no such path exists."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    allowed = allowed.astype(bool)
    index = np.full(allowed.shape, -1)
    index[allowed] = np.arange(np.count_nonzero(allowed))
    rows, cols, weights = [], [], []
    h, w = allowed.shape
    for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = index[max(0, -di):h - max(0, di), max(0, -dj):w - max(0, dj)]
        b = index[max(0, di):h + min(0, di) or None, max(0, dj):w + min(0, dj) or None]
        both = (a >= 0) & (b >= 0)
        rows.append(a[both])
        cols.append(b[both])
        weights.append(np.full(np.count_nonzero(both), res * math.hypot(di, dj)))
    n = int(index.max()) + 1
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    out = np.full(allowed.shape, np.inf)
    if index[start] >= 0:
        out[allowed] = dijkstra(graph.tocsr(), directed=False, indices=int(index[start]))
    return out


def glacier_length(ice: np.ndarray, ref: np.ndarray, elevation: np.ndarray, distances: np.ndarray) -> float:
    """A glacier's length: the path distance (`path_distances` from its head) of the lowest cell
    of the ice's main body (the piece that overlaps `ref` most); nan without ice."""
    body = main_body(ice, ref) & np.isfinite(distances)
    if not body.any():
        return float("nan")
    return float(distances[body][np.argmin(elevation[body])])


__all__ = ["glacier_length", "grid_ceiling", "lowest_elevation", "lowest_fifth", "main_body", "outline_shape",
           "path_distances", "shape_flag", "terminus_elevation", "tongue_coverage"]
