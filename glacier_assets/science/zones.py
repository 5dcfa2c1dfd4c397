"""Nearest-glacier zones: a partition of space between glaciers (every point goes to the glacier
whose outline is nearest; inside an outline, that glacier). Used to split another inventory's
polygon between the glaciers it covers, and to mosaic touching glaciers' simulated outlines so
that no ground is counted twice."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.ops import unary_union

ZONE_SPACING_M = 25.0  # outlines are sampled every 25 m (the product resolution) for their zones


def nearest_zones(outlines: dict, extent, spacing_m: float = ZONE_SPACING_M) -> dict:
    """Each glacier's nearest-glacier zone within `extent` (a polygon): a dict from the keys of
    `outlines` (glacier -> outline, one metric CRS shared with `extent`) to a geometry.

    The zones come from the Voronoi cells of points every `spacing_m` along every outline; each
    glacier's own outline is added to its zone and taken out of the others'."""
    if len(outlines) == 1:
        return {next(iter(outlines)): extent}
    ids, points = [], []
    for gid, geom in outlines.items():
        coords = shapely.get_coordinates(shapely.segmentize(geom.boundary, spacing_m))
        ids.extend([gid] * len(coords))
        points.append(coords)
    coords, ids = np.vstack(points), np.array(ids, dtype=object)
    coords, first = np.unique(coords, axis=0, return_index=True)  # shared edges give the same point twice
    ids = ids[first]
    frame = shapely.box(*shapely.bounds(unary_union([extent, *outlines.values()])))
    cells = np.asarray(shapely.get_parts(shapely.voronoi_polygons(
        shapely.MultiPoint(coords), extend_to=frame.buffer(spacing_m), ordered=True)))
    hit = shapely.intersects(cells, extent)  # only the cells that reach into the extent matter
    cells, ids = cells[hit], ids[hit]
    zones = {}
    for gid, geom in outlines.items():
        others = unary_union([g for k, g in outlines.items() if k != gid])
        zones[gid] = unary_union(list(cells[ids == gid]) + [geom]).difference(others).intersection(extent)
    return zones


def polygonal(geom) -> shapely.MultiPolygon:
    """The polygonal part of a geometry (lines and points along shared edges dropped)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    return shapely.MultiPolygon([q for p in parts for q in shapely.get_parts(p)])


def _near(extent, outlines: dict) -> dict:
    """The parts of `outlines` that can be nearest to a point of `extent`: those within R of its
    envelope, R bounding every point's distance to every outline (the corners' farthest distance
    plus the diagonal), so the zones within `extent` come out the same at a fraction of the cost."""
    env = extent.envelope
    corners = shapely.points(shapely.get_coordinates(env.exterior if env.geom_type == "Polygon" else env))
    x0, y0, x1, y1 = env.bounds
    reach = max(float(shapely.distance(corners, g).max()) for g in outlines.values()) + np.hypot(x1 - x0, y1 - y0)
    window = env.buffer(reach + ZONE_SPACING_M)
    return {k: g.intersection(window) for k, g in outlines.items()}


def mosaic(simulated: dict, initial: dict, min_area_m2: float = 1.0) -> dict:
    """Touching glaciers' simulated outlines made into a mosaic, as the dataset mosaics its coded
    masks: where two overlap, the overlap is split between them along the nearest-glacier zones
    of their initial outlines; ice that only one glacier has stays its own. Both dicts map glacier
    ids to geometries in one metric CRS. Returns the outlines: their union is unchanged and no two
    overlap by `min_area_m2` or more."""
    out = dict(simulated)
    ids = sorted(out)
    tree = shapely.STRtree([out[g] for g in ids])
    for a, b in zip(*tree.query([out[g] for g in ids], predicate="overlaps")):
        if a >= b:
            continue
        ga, gb = ids[a], ids[b]
        both = out[ga].intersection(out[gb])
        if both.area < min_area_m2:
            continue
        zones = nearest_zones(_near(both, {ga: initial[ga], gb: initial[gb]}), both)
        out[ga], out[gb] = polygonal(out[ga].difference(zones[gb])), polygonal(out[gb].difference(zones[ga]))
    return out
