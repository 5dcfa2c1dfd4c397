"""The products of one epoch for the whole region: every glacier's outline in one file, in the
Albers equal-area projection, touching glaciers mosaicked so no ground counts twice."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from ..constants import (
    GEOGRAPHIC_CRS,
)
from ..science.vectorize import overlaps
from ..science.zones import mosaic
from ..storage import write_geoparquet, write_shapefile
from .epoch import OUTLINE_COLUMNS


def make_regional_outlines(outline_paths: list[Path], year: int, albers: str, shp_path: Path,
                           parquet_path: Path, initial: dict | None = None, fingerprint_: str | None = None) -> dict:
    """All glaciers of one epoch in one file, reprojected to the Albers equal-area projection
    (glaciers with no ice left at the epoch have no row), as a mosaic: where touching glaciers'
    simulated outlines overlap, the overlap goes to the glacier whose initial outline is nearer
    (`science.zones.mosaic`; `initial` maps glacier ids to their initial outlines, EPSG:4326), so
    no ground is counted twice and none is lost. The figures give the area the glaciers' own
    outlines count twice (`mosaicked_overlap_km2`) and the pairs that still overlap (none when
    `initial` is given)."""
    parts = [g.to_crs(albers) for g in read_outline_files(outline_paths)]
    parts = [g[~(g.geometry.isna() | g.geometry.is_empty)] for g in parts]
    if parts:
        gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=albers)
    else:
        gdf = gpd.GeoDataFrame(columns=OUTLINE_COLUMNS, geometry="geometry", crs=albers)
    gdf = gdf.sort_values("glacier_id").reset_index(drop=True)
    _, twice_km2 = overlaps(gdf.geometry)
    if initial is not None and len(gdf) > 1:
        ids = list(gdf["glacier_id"])
        first = gpd.GeoSeries([initial[g] for g in ids], crs=GEOGRAPHIC_CRS).to_crs(albers)
        tiled = mosaic(dict(zip(ids, gdf.geometry)), dict(zip(ids, first)))
        gdf["geometry"] = [tiled[g] for g in ids]
        gdf = gdf[~gdf.geometry.is_empty].reset_index(drop=True)  # all its ice nearer a neighbour's outline
    gdf["year"] = year
    gdf["area_km2"] = gdf.geometry.area / 1e6
    write_shapefile(shp_path, gdf)
    write_geoparquet(parquet_path, gdf, {"fingerprint": fingerprint_} if fingerprint_ else None)
    return {**regional_figures(gdf, albers, shp_path, parquet_path), "mosaicked_overlap_km2": round(twice_km2, 5),
            "table": gdf}


def read_outline_files(paths: list[Path]) -> list[gpd.GeoDataFrame]:
    """Outline GeoParquet files (make_outline's) as GeoDataFrames, one per CRS (in the order of the
    CRSs' first files), their rows in file order: what reading each with gpd.read_parquet and
    concatenating those of one CRS gives, but the CRS is parsed once per CRS instead of once per
    file (pyproj takes ~6 ms to parse a file's PROJJSON, more than the rest of the reading). Files
    whose columns differ are read one by one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    groups: dict[str, list] = {}
    for p in paths:
        table = pq.read_table(p)
        geo = json.loads((table.schema.metadata or {}).get(b"geo", b"{}") or b"{}")
        column = geo.get("primary_column")
        meta = geo.get("columns", {}).get(column, {})
        if column is None or meta.get("encoding") != "WKB" or len(geo.get("columns", {})) != 1:
            groups.setdefault(f"file:{p}", []).append((p, None, None, None))  # anything else: geopandas
            continue
        crs = meta.get("crs", "OGC:CRS84")
        groups.setdefault(json.dumps(crs, sort_keys=True), []).append((p, table, column, crs))
    out = []
    for members in groups.values():
        if members[0][1] is None:
            out.append(gpd.read_parquet(members[0][0]))
            continue
        column, crs = members[0][2], members[0][3]
        try:
            table = pa.concat_tables([t for _, t, _, _ in members])
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # columns differ: as geopandas reads them
            out.append(gpd.GeoDataFrame(pd.concat([gpd.read_parquet(p) for p, *_ in members])))
            continue
        df = table.drop([column]).to_pandas()
        if isinstance(crs, dict):  # PROJJSON, as written by this PROJ: parsed once per group
            crs = pyproj.CRS.from_json_dict(crs)
        df.insert(table.column_names.index(column), column,
                  gpd.array.from_wkb(np.array(table[column]), crs=crs))
        out.append(gpd.GeoDataFrame(df, geometry=column))
    return out


def regional_figures(table: gpd.GeoDataFrame, crs: str, shp_path: Path, parquet_path: Path) -> dict:
    """What a regional outline file holds: its paths, CRS, glaciers, area, and the pairs of
    glaciers that overlap with the area they count twice."""
    n_pairs, twice_km2 = overlaps(table.geometry)
    return {"path": str(shp_path), "geoparquet": str(parquet_path), "crs": crs,
            "n_glaciers": len(table), "area_km2": round(float(table["area_km2"].sum()), 4),
            "overlapping_pairs": n_pairs, "overlap_area_km2": round(twice_km2, 5)}



def published_outline_table(paths: list[Path]) -> gpd.GeoDataFrame:
    """Every regional outline file (all epochs) as one table, the attributes people filter on."""
    parts = [gpd.read_parquet(p) for p in paths if Path(p).exists()]
    if not parts:
        return gpd.GeoDataFrame(columns=OUTLINE_COLUMNS, geometry="geometry")
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=parts[0].crs)


__all__ = ["make_regional_outlines", "published_outline_table", "read_outline_files", "regional_figures"]
