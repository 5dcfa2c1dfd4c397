"""Read outline inventories (RGI6, CGI-style, any CRS) into one validated table.

The standard table (a GeoDataFrame in EPSG:4326) has one row per glacier and outline date:

    glacier_id  role (initial|control)  year  epoch  area_km2  declared_area_km2  source  geometry

`area_km2` is computed on the ellipsoid-faithful Albers equal-area projection; `epoch` is the
model epoch nearest the outline's year. Rows that fail validation are not dropped silently: they
come back as `Rejection`s naming the glacier, the file and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon

from ..constants import EPOCHS, GEOGRAPHIC_CRS, albers_crs
from .ids import InvalidGlacierId, validate_glacier_id
from .region import OutlineSource

ID_COLUMNS = ("RGIId", "rgi_id", "FCGI_ID", "GLIMSId", "glacier_id")
YEAR_COLUMNS = ("BgnDate", "Rep_Date", "year", "Year")
AREA_COLUMNS = {"Area": 1.0, "area_km2": 1.0, "Glc_Area": 1e-6}  # column -> factor to km2
STANDARD_COLUMNS = ["glacier_id", "role", "year", "epoch", "area_km2", "declared_area_km2", "source", "geometry"]


@dataclass(frozen=True)
class Rejection:
    glacier_id: str
    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.glacier_id} ({self.source}): {self.reason}"


def nearest_epoch(year: int) -> int:
    return int(min(EPOCHS, key=lambda e: (abs(e - year), e)))


def _year_from_value(value: object) -> int | None:
    """Year from RGI `BgnDate` (YYYYMMDD, -9999999 unknown), a date string, or a number."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    m = re.search(r"(1[89]\d\d|20\d\d)", str(value))
    return int(m.group(1)) if m else None


def _polygonal(geom) -> MultiPolygon | None:
    """Repair invalid rings and keep only the polygonal part, or None if nothing remains."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys: list[Polygon] = []
    for g in getattr(geom, "geoms", [geom]):
        if isinstance(g, Polygon) and not g.is_empty:
            polys.append(g)
        elif isinstance(g, MultiPolygon):
            polys.extend(p for p in g.geoms if not p.is_empty)
    return MultiPolygon(polys) if polys else None


def read_outline_source(src: OutlineSource, id_pattern: str) -> tuple[gpd.GeoDataFrame, list[Rejection]]:
    """Read one outline file and return its valid rows in the standard table, and the rejections."""
    name = Path(src.path).name
    if not Path(src.path).exists():
        raise FileNotFoundError(f"outline file {src.path} does not exist")
    gdf = gpd.read_file(src.path)
    if gdf.crs is None:
        raise ValueError(f"outline file {src.path} has no CRS (.prj missing?)")
    id_col = src.id_column or next((c for c in ID_COLUMNS if c in gdf.columns), None)
    if id_col is None or id_col not in gdf.columns:
        raise ValueError(f"outline file {src.path}: no id column (tried {src.id_column or ID_COLUMNS})")
    year_col = src.year_column or next((c for c in YEAR_COLUMNS if c in gdf.columns), None)
    area_col = next((c for c in AREA_COLUMNS if c in gdf.columns), None)

    rejections: list[Rejection] = []
    rows = []
    seen: set[str] = set()
    equal_area = gdf.geometry.to_crs(albers_crs())
    for i, rec in gdf.iterrows():
        raw_id = rec[id_col]
        label = str(raw_id) if raw_id is not None else f"row {i}"
        try:
            gid = validate_glacier_id(raw_id if isinstance(raw_id, str) else str(raw_id), id_pattern)
        except InvalidGlacierId as exc:
            rejections.append(Rejection(label, name, str(exc)))
            continue
        if gid in seen:
            rejections.append(Rejection(gid, name, "duplicate id in this outline file"))
            continue
        year = src.year if src.year is not None else (_year_from_value(rec[year_col]) if year_col else None)
        if year is None:
            rejections.append(Rejection(gid, name, f"no outline year (column {year_col!r}; set `year` in the spec)"))
            continue
        geom = _polygonal(rec.geometry)
        if geom is None:
            rejections.append(Rejection(gid, name, "empty or non-polygonal geometry"))
            continue
        area = float(_polygonal(equal_area.iloc[i]).area / 1e6) if geom is not None else 0.0
        if not area > 0:
            rejections.append(Rejection(gid, name, "outline has zero area"))
            continue
        declared = float(rec[area_col]) * AREA_COLUMNS[area_col] if area_col else np.nan
        seen.add(gid)
        rows.append(
            {
                "glacier_id": gid,
                "role": src.role,
                "year": int(year),
                "epoch": nearest_epoch(int(year)),
                "area_km2": area,
                "declared_area_km2": declared,
                "source": name,
                "geometry": geom,
            }
        )
    table = gpd.GeoDataFrame(rows, columns=STANDARD_COLUMNS, geometry="geometry", crs=gdf.crs)
    return table.to_crs(GEOGRAPHIC_CRS), rejections


def build_inventory(
    sources: tuple[OutlineSource, ...], id_pattern: str, include: tuple[str, ...] = ()
) -> tuple[gpd.GeoDataFrame, list[Rejection]]:
    """All outline sources merged into the standard table.

    A glacier is kept only if it has an initial outline; control outlines of unknown glaciers
    and duplicate (glacier, year) rows are rejected. `include`, if given, keeps only those ids.
    """
    parts, rejections = [], []
    for src in sources:
        table, rej = read_outline_source(src, id_pattern)
        parts.append(table)
        rejections.extend(rej)
    inv = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=GEOGRAPHIC_CRS)
    if include:
        unknown = sorted(set(include) - set(inv["glacier_id"]))
        rejections.extend(Rejection(g, "include", "requested glacier is not in the inventory") for g in unknown)
        inv = inv[inv["glacier_id"].isin(include)]
    initial_ids = set(inv.loc[inv["role"] == "initial", "glacier_id"])
    orphan = (inv["role"] == "control") & ~inv["glacier_id"].isin(initial_ids)
    for _, r in inv[orphan].iterrows():
        rejections.append(Rejection(r["glacier_id"], r["source"], "control outline without an initial outline"))
    inv = inv[~orphan]
    dup = inv.duplicated(subset=["glacier_id", "role", "year"], keep="first")
    for _, r in inv[dup].iterrows():
        rejections.append(Rejection(r["glacier_id"], r["source"], f"second {r['role']} outline for {r['year']}"))
    inv = inv[~dup]
    multi_initial = inv[inv["role"] == "initial"].duplicated(subset=["glacier_id"], keep="first")
    for idx in multi_initial[multi_initial].index:
        r = inv.loc[idx]
        rejections.append(Rejection(r["glacier_id"], r["source"], "more than one initial outline"))
    inv = inv.drop(index=multi_initial[multi_initial].index)
    inv = inv.sort_values(["glacier_id", "year", "role"]).reset_index(drop=True)
    return inv, rejections
