"""Raster to vector: glacier outlines from coded masks, with holes kept and areas from the geometry."""

from __future__ import annotations

import numpy as np
import rasterio.features
from affine import Affine
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.ops import unary_union


def mask_to_polygons(mask: np.ndarray, transform: Affine) -> dict[int, MultiPolygon]:
    """One MultiPolygon per non-zero code in `mask`; pixel edges become polygon edges, so the
    polygon area equals the pixel count times the pixel area."""
    mask = mask.astype("int32")
    parts: dict[int, list[Polygon]] = {}
    for geom, value in rasterio.features.shapes(mask, mask=mask != 0, transform=transform, connectivity=4):
        parts.setdefault(int(value), []).append(shape(geom))
    out: dict[int, MultiPolygon] = {}
    for code, polys in parts.items():
        merged = unary_union(polys)
        out[code] = merged if isinstance(merged, MultiPolygon) else MultiPolygon([merged])
    return out


def overlaps(geometries, min_area_m2: float = 1.0) -> tuple[int, float]:
    """Pairs of geometries (a GeoSeries in a projected CRS) whose overlap is at least `min_area_m2`
    (a 25 m cell is 625 m2; slivers below that are rounding in the reprojection of shared pixel
    edges), and the area (km2) those overlaps count twice."""
    pairs = geometries.sindex.query(geometries, predicate="intersects")
    pairs = pairs[:, pairs[0] < pairs[1]]
    left = geometries.iloc[pairs[0]].reset_index(drop=True)
    right = geometries.iloc[pairs[1]].reset_index(drop=True)
    area = left.intersection(right).area.to_numpy() if len(left) else np.zeros(0)
    big = area >= min_area_m2
    return int(big.sum()), float(area[big].sum() / 1e6)
