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
from typing import TYPE_CHECKING, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import MultiPolygon, Polygon

from ..constants import EPOCHS, GEOGRAPHIC_CRS, albers_crs
from .ids import InvalidGlacierId, validate_glacier_id
from .matching import MATCH_COLUMNS, UNMATCHED_COLUMNS, split_by_location
from .selection import select_glaciers

if TYPE_CHECKING:
    from .region import OutlineSource, Selection

ID_COLUMNS = ("RGIId", "rgi_id", "FCGI_ID", "GLIMSId", "glacier_id")
YEAR_COLUMNS = ("BgnDate", "Rep_Date", "year", "Year")
AREA_COLUMNS = {"Area": 1.0, "area_km2": 1.0, "Glc_Area": 1e-6}  # column -> factor to km2
STANDARD_COLUMNS = ["glacier_id", "role", "year", "epoch", "area_km2", "declared_area_km2", "source", "repair",
                    "geometry"]


@dataclass(frozen=True)
class Rejection:
    glacier_id: str
    source: str  # the outline file
    reason: str
    column: str = ""  # the offending column and value, where one is to blame
    value: str = ""

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


def outline_columns(src: OutlineSource, columns: list[str]) -> tuple[str | None, str | None]:
    """The id column and the year column (None if `src.year` is given) of an outline file with
    these `columns`: those named in `src`, or the first of the usual ones that is there. A file
    matched by location needs no id column (its features are then numbered)."""
    if src.match == "location" and src.id_column is None:
        id_col = next((c for c in ID_COLUMNS if c in columns), None)
    else:
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


def read_features(src: OutlineSource) -> tuple[gpd.GeoDataFrame, list[Rejection]]:
    """The dated polygons of one outline file (columns source, source_id, role, year, area_km2,
    declared_area_km2, repair, geometry; the file's CRS) and the features refused (no date,
    no polygon, no area). `source_id` is the id column's value, or `#row` without one."""
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
    rows, rejections = [], []
    for i, rec in gdf.iterrows():
        raw_id = rec[id_col] if id_col else None
        label = f"#{i}" if raw_id is None else raw_id if isinstance(raw_id, str) else str(raw_id)
        year = src.year if src.year is not None else _year_from_value(rec[year_col])
        geom, repair = repaired[i]
        problem = (f"no outline year (column {year_col!r}; set `year` in the spec)" if year is None
                   else "empty or non-polygonal geometry" if geom is None
                   else "outline has zero area" if not area_km2[i] > 0 else None)
        if problem:
            rejections.append(Rejection(label, name, problem))
            continue
        assert year is not None  # a missing year is a problem above
        rows.append({"source": name, "source_id": label, "role": src.role, "year": int(year),
                     "area_km2": float(area_km2[i]),
                     "declared_area_km2": float(rec[area_col]) * AREA_COLUMNS[area_col] if area_col else np.nan,
                     "repair": repair, "geometry": geom})
    columns = ["source", "source_id", "role", "year", "area_km2", "declared_area_km2", "repair", "geometry"]
    return gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=gdf.crs), rejections


def _standard(rows: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rows with glacier_id, role, year, area_km2, ... in the standard table (EPSG:4326)."""
    rows = rows.assign(epoch=[nearest_epoch(int(y)) for y in rows["year"]])
    return gpd.GeoDataFrame(rows[STANDARD_COLUMNS], geometry="geometry", crs=rows.crs).to_crs(GEOGRAPHIC_CRS)


def read_outline_source(src: OutlineSource, id_pattern: str) -> tuple[gpd.GeoDataFrame, list[Rejection]]:
    """Read one outline file matched by id and return its valid rows in the standard table, and
    the rejections (ids that do not match the pattern, duplicates, features without a date or a
    polygon)."""
    features, rejections = read_features(src)
    keep, seen = [], set()
    for i, gid in features["source_id"].items():
        try:
            validate_glacier_id(gid, id_pattern)
        except InvalidGlacierId as exc:
            rejections.append(Rejection(gid, features.at[i, "source"], str(exc)))
            continue
        if gid in seen:
            rejections.append(Rejection(gid, features.at[i, "source"], "duplicate id in this outline file"))
            continue
        seen.add(gid)
        keep.append(i)
    return _standard(features.loc[keep].rename(columns={"source_id": "glacier_id"})), rejections


class InventoryBuild(NamedTuple):
    """What `build_inventory` makes: the standard table, the rows refused, and for the files
    matched by location the shares (`matching.MATCH_COLUMNS`, EPSG:4326), the polygons matched to
    no glacier, and the (source, glacier) pairs where a reference glacier got no outline."""
    outlines: gpd.GeoDataFrame
    rejections: list[Rejection]
    matches: gpd.GeoDataFrame
    unmatched: pd.DataFrame
    missing: pd.DataFrame
    selection: dict


def _match_by_location(sources, reference: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame, list]:
    """Every location-matched file split between the reference glaciers (`matching`)."""
    metric = reference.estimate_utm_crs()
    ref = gpd.GeoSeries(reference.geometry.to_numpy(), index=reference["glacier_id"].to_numpy(),
                        crs=reference.crs).to_crs(metric)
    shares, unmatched, rejections = [], [], []
    for src in sources:
        features, rej = read_features(src)
        rejections.extend(rej)
        got, lost = split_by_location(features.to_crs(metric), ref, src.min_piece_km2, albers_crs())
        shares.append(got.to_crs(GEOGRAPHIC_CRS))
        if not lost.empty:
            unmatched.append(lost)
    matches = gpd.GeoDataFrame(pd.concat(shares, ignore_index=True), geometry="geometry", crs=GEOGRAPHIC_CRS)
    lost = pd.concat(unmatched, ignore_index=True) if unmatched else pd.DataFrame(columns=UNMATCHED_COLUMNS)
    return matches, lost, rejections


def _located_outlines(matches: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One standard row per glacier, file and date from the matched shares (shares of several
    polygons of one date joined)."""
    used = matches[matches["status"] == "matched"]
    if used.empty:
        return gpd.GeoDataFrame(columns=STANDARD_COLUMNS, geometry="geometry", crs=GEOGRAPHIC_CRS)
    joined = used.dissolve(by=["glacier_id", "source", "role", "year"], as_index=False, aggfunc="first")
    joined["geometry"] = [_polygonal(g)[0] for g in joined.geometry]
    joined["area_km2"] = joined.to_crs(albers_crs()).area.to_numpy() / 1e6
    joined["declared_area_km2"] = np.nan
    joined["repair"] = ""
    return _standard(joined)


def _by_location(located: list, reference: gpd.GeoDataFrame, kept: set[str], parts: list, rejections: list):
    """Split the location-matched files between the reference glaciers; the kept glaciers'
    outlines are added to `parts` and refused features to `rejections`. Returns the shares, the
    unmatched polygons and the (source, glacier) pairs without an outline."""
    if not (located and kept):
        return (gpd.GeoDataFrame(columns=MATCH_COLUMNS, geometry="geometry", crs=GEOGRAPHIC_CRS),
                pd.DataFrame(columns=UNMATCHED_COLUMNS), pd.DataFrame(columns=["source", "glacier_id"]))
    matches, unmatched, rej = _match_by_location(located, reference)
    matches.loc[(matches["status"] == "matched") & ~matches["glacier_id"].isin(kept), "status"] = "outside the region"
    rejections.extend(rej)
    parts.append(_located_outlines(matches[matches["glacier_id"].isin(kept)]))
    got = set(zip(matches.loc[matches["status"] == "matched", "source"], matches["glacier_id"]))
    missing = pd.DataFrame([(Path(s.path).name, g) for s in located for g in sorted(kept)
                            if (Path(s.path).name, g) not in got], columns=["source", "glacier_id"])
    return matches, unmatched, missing


def _consistent(inv: gpd.GeoDataFrame, rejections: list) -> gpd.GeoDataFrame:
    """One initial outline per glacier, controls only of glaciers that have one, one outline per
    glacier, role and year; what is dropped is added to `rejections`."""
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
    return inv


def build_inventory(sources: tuple[OutlineSource, ...], id_pattern: str, include: tuple[str, ...] = (),
                    selection: Selection | None = None) -> InventoryBuild:
    """All outline sources merged into the standard table.

    The first file matched by id is the reference inventory: its glaciers (those `selection`
    keeps) are the region's glaciers. Files matched by id add outlines to those glaciers; files
    matched by location are split between them (`matching`). A glacier is kept only if it has
    an initial outline; outlines of glaciers outside the region, duplicate (glacier, year) rows
    and second initial outlines are rejected. `include`, if given, keeps only those ids.
    """
    parts, rejections = [], []
    for src in (s for s in sources if s.match == "id"):
        table, rej = read_outline_source(src, id_pattern)
        parts.append(table)
        rejections.extend(rej)
    reference = parts[0]
    kept, summary = select_glaciers(reference, selection)
    located = [s for s in sources if s.match == "location"]
    matches, unmatched, missing = _by_location(located, reference, kept, parts, rejections)
    inv = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=GEOGRAPHIC_CRS)
    outside = ~inv["glacier_id"].isin(kept | set(reference["glacier_id"]))
    for _, r in inv[outside].iterrows():
        rejections.append(Rejection(r["glacier_id"], r["source"], "not in the reference inventory "
                                    f"({Path(next(s for s in sources if s.match == 'id').path).name})"))
    inv = inv[inv["glacier_id"].isin(kept)]
    if include:
        unknown = sorted(set(include) - set(inv["glacier_id"]))
        rejections.extend(Rejection(g, "include", "requested glacier is not in the inventory") for g in unknown)
        inv = inv[inv["glacier_id"].isin(include)]
    inv = _consistent(_per_row_rules(inv, id_pattern, rejections), rejections)
    return InventoryBuild(inv, rejections, matches, unmatched, missing, summary)


def _per_row_rules(inv: gpd.GeoDataFrame, id_pattern: str, rejections: list) -> gpd.GeoDataFrame:
    """Rows that break a per-row rule of the inventory schema (schemas.py: a year outside the
    years the model can use, an id the pattern refuses, ...) are rejected, each with its glacier,
    file, column and value, and the other rows go on; rules over the whole table stay with the
    blocking schema check."""
    import pandera.errors

    from ..schemas import inventory_schema

    inv = inv.reset_index(drop=True)
    try:
        inventory_schema(id_pattern).validate(pd.DataFrame(inv.drop(columns="geometry")), lazy=True)
        return inv
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    cases = cases[cases["index"].notna() & cases["column"].isin(inv.columns)]
    for idx, rows in cases.groupby(cases["index"].astype(int)):
        r = inv.loc[idx]
        first = rows.iloc[0]
        reason = "; ".join(f"{c.column} {c.failure_case} breaks {c.check}" for c in rows.itertuples())
        rejections.append(Rejection(r["glacier_id"], r["source"], reason, str(first["column"]),
                                    str(first["failure_case"])))
    return inv.drop(index=cases["index"].astype(int).unique()).reset_index(drop=True)
