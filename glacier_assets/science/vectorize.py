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
