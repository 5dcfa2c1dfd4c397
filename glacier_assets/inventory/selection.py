"""The region cut out of a reference inventory: basins, a bounding box and a minimum area."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
from shapely.geometry import box
from shapely.ops import unary_union

from ..constants import GEOGRAPHIC_CRS

if TYPE_CHECKING:
    from .region import BasinSelection, Selection


def read_basins(basins: BasinSelection) -> object:
    """The union of the chosen basin polygons (EPSG:4326); a ValueError names the file and the
    basins it lacks."""
    gdf = gpd.read_file(basins.path)
    if gdf.crs is None:
        raise ValueError(f"basin file {basins.path} has no CRS (.prj missing?)")
    if basins.names:
        if basins.column not in gdf.columns:
            raise ValueError(f"basin file {basins.path}: no column {basins.column!r} (columns: "
                             f"{', '.join(c for c in gdf.columns if c != 'geometry')})")
        known = set(gdf[basins.column].astype(str))
        lacking = [n for n in basins.names if n not in known]
        if lacking:
            raise ValueError(f"basin file {basins.path}: no basin {', '.join(map(repr, lacking))} in column "
                             f"{basins.column!r} (there are: {', '.join(sorted(known))})")
        gdf = gdf[gdf[basins.column].astype(str).isin(basins.names)]
    return unary_union(list(gdf.to_crs(GEOGRAPHIC_CRS).geometry.make_valid()))


def select_glaciers(reference: gpd.GeoDataFrame, selection: Selection | None) -> tuple[set[str], dict]:
    """The ids of the reference glaciers (standard table rows, EPSG:4326) that the selection keeps
    (a glacier belongs to the basin and box that hold its representative point), and what was
    kept: counts and km2 before and after, and the criteria."""
    keep = reference["area_km2"] >= 0
    criteria: dict[str, Any] = {}
    if selection is not None:
        points = reference.geometry.representative_point()
        if selection.basins is not None:
            keep &= points.within(read_basins(selection.basins))
            criteria["basins"] = f"{selection.basins.path.name}: {', '.join(selection.basins.names) or 'all'}"
        if selection.bbox is not None:
            keep &= points.within(box(*selection.bbox))
            criteria["bbox"] = list(selection.bbox)
        if selection.min_area_km2 > 0:
            keep &= reference["area_km2"] >= selection.min_area_km2
            criteria["min_area_km2"] = selection.min_area_km2
    summary = {"reference_glaciers": len(reference), "reference_area_km2": round(float(reference["area_km2"].sum()), 3),
               "selected_glaciers": int(keep.sum()),
               "selected_area_km2": round(float(reference.loc[keep, "area_km2"].sum()), 3), **criteria}
    return set(reference.loc[keep, "glacier_id"]), summary
