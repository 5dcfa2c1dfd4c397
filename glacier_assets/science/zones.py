"""Nearest-glacier zones: a partition of space between glaciers (every point goes to the glacier
whose outline is nearest; inside an outline, that glacier). Used to split another inventory's
polygon between the glaciers it covers, and to mosaic touching glaciers' simulated outlines so
that no ground is counted twice."""

from __future__ import annotations

import numpy as np
import shapely

ZONE_SPACING_M = 25.0  # outlines are sampled every 25 m (the product resolution) for their zones
GRID_M = 0.01  # an overlay GEOS cannot do exactly is done again with snap rounding to 1 cm


def _robust(operation, *geometries):
    """A shapely overlay, exact; if GEOS fails on near-degenerate input (a TopologyException),
    again with snap rounding to GRID_M."""
    try:
        return operation(*geometries)
    except shapely.errors.GEOSException:
        return operation(*geometries, grid_size=GRID_M)


def nearest_zones(outlines: dict, extent, spacing_m: float = ZONE_SPACING_M) -> dict:
    """Each glacier's nearest-glacier zone within `extent` (a polygon): a dict from the keys of
    `outlines` (glacier -> outline, one metric CRS shared with `extent`) to a geometry.

    The zones come from the Voronoi cells of points every `spacing_m` along every outline; each
    glacier's own outline is added to its zone and taken out of the others'."""
    if len(outlines) == 1:
        return {next(iter(outlines)): extent}
    owners: list = []
    points: list[np.ndarray] = []
    for gid, geom in outlines.items():
        coords = shapely.get_coordinates(shapely.segmentize(geom.boundary, spacing_m))
        owners.extend([gid] * len(coords))
        points.append(coords)
    coords, ids = np.vstack(points), np.array(owners, dtype=object)
    coords, first = np.unique(coords, axis=0, return_index=True)  # shared edges give the same point twice
    ids = ids[first]
    origin = np.asarray(shapely.get_coordinates(extent.centroid)[0])  # Voronoi in local coordinates: precise
    x0, y0, x1, y1 = extent.bounds
    frame = shapely.box(x0 - origin[0], y0 - origin[1], x1 - origin[0], y1 - origin[1]).buffer(spacing_m)
    cells = np.asarray(shapely.get_parts(shapely.voronoi_polygons(
        shapely.MultiPoint(coords - origin), extend_to=frame, ordered=True)))
    hit = shapely.intersects(cells, shapely.transform(extent, lambda xy: xy - origin))  # the cells that matter
    cells, ids = shapely.transform(shapely.make_valid(cells[hit]), lambda xy: xy + origin), ids[hit]
    mixed = shapely.get_type_id(cells) == 7
    cells[mixed] = [polygonal(c) for c in cells[mixed]]
    cells = _robust(shapely.intersection, cells, extent)  # clipped to the extent
    mixed = shapely.get_type_id(cells) == 7  # geometry collections: keep their polygons
    cells[mixed] = [polygonal(c) for c in cells[mixed]]
    inside = {gid: polygonal(_robust(shapely.intersection, geom, extent)) for gid, geom in outlines.items()}
    zones = {}
    for gid in outlines:
        others = polygonal(_robust(shapely.union_all, [g for k, g in inside.items() if k != gid]))
        own = polygonal(_robust(shapely.union_all, [*cells[ids == gid], inside[gid]]))
        zones[gid] = polygonal(_robust(shapely.difference, own, others))
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
    for a, b in zip(*tree.query([out[g] for g in ids], predicate="intersects")):
        if a >= b:
            continue
        ga, gb = ids[a], ids[b]
        both = polygonal(_robust(shapely.intersection, out[ga], out[gb]))
        if both.area < min_area_m2:
            continue
        zones = nearest_zones(_near(both, {ga: initial[ga], gb: initial[gb]}), both)
        out[ga] = polygonal(_robust(shapely.difference, out[ga], zones[gb]))
        out[gb] = polygonal(_robust(shapely.difference, out[gb], zones[ga]))
    return out
