"""Outlines without the reference ids, tied to the reference glaciers by location.

The reference inventory (the first outline file matched by id, RGI6 by default) names the
glaciers. Any other outline set (another id scheme or none, any CRS, any date) is matched by
location: each polygon is split along the nearest-glacier zones of the reference glaciers (every
point goes to the reference outline nearest to it), so a 1970s outline of a glacier that has since
split, two glaciers joined in one old polygon, or an outline larger than today's glacier each give
every reference glacier its own share. Only glaciers that the polygon overlaps by `min_piece_km2`
or more share it, so a neighbour's polygon that only touches a glacier along their divide is not
given to it; a polygon that overlaps no reference glacier that much (a glacier that has vanished,
or one missing from the reference) is unmatched, and shares smaller than `min_piece_km2` are
recorded as slivers but not used. The reference must hold every glacier around the polygons.

All geometry work happens in one metric CRS (the UTM zone of the reference outlines).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..science.zones import nearest_zones

MATCH_COLUMNS = ["source", "source_id", "glacier_id", "role", "year", "area_km2", "overlap_fraction", "status",
                 "geometry"]
UNMATCHED_COLUMNS = ["source", "source_id", "year", "area_km2", "reason"]


def split_by_location(polygons: gpd.GeoDataFrame, reference: gpd.GeoSeries, min_piece_km2: float,
                      area_crs: str) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Split each polygon (columns source, source_id, role, year, geometry) between the reference
    glaciers (a GeoSeries indexed by glacier id, same metric CRS) it overlaps by at least
    `min_piece_km2`, along their nearest-glacier zones. Returns the shares (one row per polygon and
    glacier, `MATCH_COLUMNS`; `overlap_fraction` is the share of the polygon's area, `status`
    "matched", or "sliver" below `min_piece_km2`) and the polygons that overlap no reference
    glacier that much (`UNMATCHED_COLUMNS`, the nearest glacier named). Areas are measured in
    `area_crs` (equal-area)."""
    crs, tree, outlines = reference.crs, reference.sindex, reference.geometry.to_numpy()
    rows, unmatched = [], []
    for poly in polygons.itertuples():
        geom = poly.geometry
        base = {"source": poly.source, "source_id": poly.source_id, "role": poly.role, "year": poly.year}
        near = np.sort(tree.query(geom, predicate="intersects"))
        overlap = shapely.area(shapely.intersection(outlines[near], geom)) / 1e6
        near = near[overlap >= min_piece_km2]
        if len(near) == 0:
            nearest = reference.index[int(np.ravel(tree.nearest(geom))[-1])]
            gap = reference.loc[nearest].distance(geom)
            unmatched.append({**base, "area_km2": _km2(geom, crs, area_crs),
                              "reason": f"overlaps no reference glacier by {min_piece_km2:g} km2 or more (nearest: "
                                        f"{nearest}, {'touching' if gap == 0 else f'{gap:.0f} m away'})"})
            continue
        total = geom.area
        for gid, share in nearest_zones(dict(reference.iloc[near].items()), geom).items():
            if share.is_empty:
                continue
            area = _km2(share, crs, area_crs)
            rows.append({**base, "glacier_id": gid, "area_km2": area, "overlap_fraction": share.area / total,
                         "status": "matched" if area >= min_piece_km2 else "sliver", "geometry": share})
    shares = gpd.GeoDataFrame(rows, columns=MATCH_COLUMNS, geometry="geometry", crs=crs)
    return shares, pd.DataFrame(unmatched, columns=UNMATCHED_COLUMNS)


def _km2(geom, crs, area_crs: str) -> float:
    return float(gpd.GeoSeries([geom], crs=crs).to_crs(area_crs).area.iloc[0] / 1e6)
