"""Read outline inventories (RGI6, CGI-style, any CRS) into one validated table.

The standard table (a GeoDataFrame in EPSG:4326) has one row per glacier and outline date:

    glacier_id  role (initial|control)  year  epoch  area_km2  declared_area_km2  source  repair  geometry

`area_km2` is computed on the ellipsoid-faithful Albers equal-area projection; `epoch` is the
model epoch nearest the outline's year. Rows that fail validation are not dropped silently: they
come back as `Rejection`s naming the glacier, the file and the problem. Outlines that were
repaired (invalid rings made valid, non-polygonal parts dropped) are kept and say so in `repair`
("" if the outline was used as it is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import MultiPolygon, Polygon

from ..constants import EPOCHS, GEOGRAPHIC_CRS, albers_crs
from .ids import InvalidGlacierId, validate_glacier_id

if TYPE_CHECKING:
    from .region import OutlineSource

ID_COLUMNS = ("RGIId", "rgi_id", "FCGI_ID", "GLIMSId", "glacier_id")
YEAR_COLUMNS = ("BgnDate", "Rep_Date", "year", "Year")
AREA_COLUMNS = {"Area": 1.0, "area_km2": 1.0, "Glc_Area": 1e-6}  # column -> factor to km2
STANDARD_COLUMNS = ["glacier_id", "role", "year", "epoch", "area_km2", "declared_area_km2", "source", "repair",
                    "geometry"]


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


def _area_change(before: float, after: float) -> str:
    if before <= 0:
        return "area 0 before the repair"
    pct = 100.0 * (after - before) / before
    return "area unchanged" if abs(pct) < 0.05 else f"area {pct:+.1f} %"


def _polygonal(geom) -> tuple[MultiPolygon | None, str]:
    """The polygonal part of `geom` with invalid rings repaired, or None if nothing remains, and
    what was repaired ("" if nothing), e.g. `invalid geometry (Self-intersection[x y]) made
    valid: area -3.2 %`; the area change is relative to the unrepaired outline's area."""
    if geom is None or geom.is_empty:
        return None, ""
    repairs = []
    fixed = geom
    if not geom.is_valid:
        fixed = shapely.make_valid(geom)
        repairs.append(f"invalid geometry ({shapely.is_valid_reason(geom)}) made valid")
    polys: list[Polygon] = []
    dropped: list[str] = []
    for g in getattr(fixed, "geoms", [fixed]):
        if isinstance(g, Polygon) and not g.is_empty:
            polys.append(g)
        elif isinstance(g, MultiPolygon):
            polys.extend(p for p in g.geoms if not p.is_empty)
        elif not g.is_empty:
            dropped.append(g.geom_type)
    if not polys:
        return None, ""
    result = MultiPolygon(polys)
    if dropped:
        repairs.append(f"non-polygonal parts dropped ({', '.join(dropped)})")
    return result, (", ".join(repairs) + ": " + _area_change(geom.area, result.area)) if repairs else ""


def _column(src: OutlineSource, named: str | None, usual: tuple[str, ...], what: str, columns: list[str]) -> str:
    col = named or next((c for c in usual if c in columns), None)
    if col not in columns:
        wanted = repr(named) if named else f"(none of {', '.join(usual)})"
        raise ValueError(f"outline file {src.path}: no {what} column {wanted} (columns: {', '.join(columns)})")
    return col


def outline_columns(src: OutlineSource, columns: list[str]) -> tuple[str, str | None]:
    """The id column and the year column (None if `src.year` is given) of an outline file with
    these `columns`: those named in `src`, or the first of the usual ones that is there."""
    id_col = _column(src, src.id_column, ID_COLUMNS, "id", columns)
    year_col = None if src.year is not None else _column(src, src.year_column, YEAR_COLUMNS, "year", columns)
    return id_col, year_col


def check_outline_source(src: OutlineSource) -> None:
    """Raise a ValueError naming the file if it cannot be read or lacks its id or year column."""
    try:
        columns = list(pyogrio.read_info(src.path)["fields"])
    except pyogrio.errors.DataSourceError as exc:
        raise ValueError(f"outline file {src.path}: cannot be read: {exc}") from None
    outline_columns(src, columns)


def read_outline_source(src: OutlineSource, id_pattern: str) -> tuple[gpd.GeoDataFrame, list[Rejection]]:
    """Read one outline file and return its valid rows in the standard table, and the rejections."""
    name = Path(src.path).name
    if not Path(src.path).exists():
        raise FileNotFoundError(f"outline file {src.path} does not exist")
    gdf = gpd.read_file(src.path)
    if gdf.crs is None:
        raise ValueError(f"outline file {src.path} has no CRS (.prj missing?)")
    id_col, year_col = outline_columns(src, list(gdf.columns))
    area_col = next((c for c in AREA_COLUMNS if c in gdf.columns), None)
    repaired = [_polygonal(g) for g in gdf.geometry]  # (polygonal geometry or None, repair) per row
    area_km2 = gpd.GeoSeries([g for g, _ in repaired], crs=gdf.crs).to_crs(albers_crs()).area.to_numpy() / 1e6

    rejections: list[Rejection] = []
    rows = []
    seen: set[str] = set()
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
        year = src.year if src.year is not None else _year_from_value(rec[year_col])
        if year is None:
            rejections.append(Rejection(gid, name, f"no outline year (column {year_col!r}; set `year` in the spec)"))
            continue
        geom, repair = repaired[i]
        if geom is None:
            rejections.append(Rejection(gid, name, "empty or non-polygonal geometry"))
            continue
        if not area_km2[i] > 0:
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
                "area_km2": float(area_km2[i]),
                "declared_area_km2": declared,
                "source": name,
                "repair": repair,
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
