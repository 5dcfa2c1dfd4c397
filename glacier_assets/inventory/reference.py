"""Reference ice volumes: a region's own table, or the Farinotti et al. (2019) consensus per RGI6
glacier, found by the glacier's RGI6 id, by the RGI6 id of the same number (RGI5), or by location
given the RGI6 outlines (RGI7, CGI, any other scheme). The regional rheology factor is calibrated
to them (science/inversion.py). And geodetic mass balances (as Hugonnet et al. 2021 give them per
glacier), which the simulated volume change is validated against."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import pandas as pd

from ..constants import VOLUME_AREA_C, VOLUME_AREA_GAMMA, VOLUME_AREA_MATCH

RGI6_ID_COLUMNS = ("RGIId", "rgi_id", "glacier_id")
EQUAL_AREA_CRS = "EPSG:6933"  # overlaps measured in a global equal-area CRS (any region)
LOCATED_MIN_SHARE = 0.01  # an overlap smaller than this share of the RGI6 glacier is a digitizing sliver
LOCATED_MIN_COVER = 0.5  # an RGI6 glacier's volume is shared only if the outlines cover this much of it


@lru_cache(maxsize=4)
def _farinotti_table(path: str) -> pd.Series:
    table = pd.read_hdf(path)
    return table["vol_itmix_m3"] / 1e9


def farinotti_volume_km3(table_path: str | Path | None, glacier_id: str) -> float | None:
    """Consensus volume (km3) of an RGI6 glacier, or None if there is no table or no such id."""
    if not table_path or not Path(table_path).exists():
        return None
    vol = _farinotti_table(str(table_path)).get(glacier_id)
    return None if vol is None or pd.isna(vol) else float(vol)


_RGI_ID = re.compile(r"^RGI(\d{2})-(\d{2})\.(\d{5})(_d\d{2})?$")


def rgi6_counterpart(glacier_id: str) -> str | None:
    """The RGI6 id an RGI id of another version (RGI50-11.00897, a divide RGI50-11.00719_d01)
    stands for: the same region and number (RGI 6.0 kept RGI 5.0's numbering); None for other
    schemes (RGI7, CGI), which only a location could match."""
    m = _RGI_ID.match(glacier_id)
    return None if m is None else f"RGI60-{m.group(2)}.{m.group(3)}"


def volume_area_km3(area_km2: float) -> float:
    """Volume-area scaling (Bahr et al. 1997; c, gamma of valley glaciers): the plausibility check
    of a matched reference volume and how a volume is shared between an RGI glacier's divides."""
    return VOLUME_AREA_C * area_km2 ** VOLUME_AREA_GAMMA


def matched_farinotti(table_path: str | Path | None, areas: dict[str, float]) -> dict[str, tuple[float, str]]:
    """glacier -> (volume km3, what it was matched to) for glaciers whose ids are not RGI6 ones
    but stand for one (`rgi6_counterpart`), given each glacier's outline area (`areas`, km2).
    The RGI6 glacier's consensus volume is shared among the glaciers standing for it (the
    divides `_d01`, `_d02` of one RGI6 glacier) in proportion to their volume-area scaling, and
    is taken only if it is within a factor `VOLUME_AREA_MATCH` of what scaling gives for their
    summed area: a number that now names another glacier does not pass."""
    groups: dict[str, list[str]] = {}
    for gid in areas:
        twin = rgi6_counterpart(gid)
        if twin is not None and not gid.startswith("RGI60-"):
            groups.setdefault(twin, []).append(gid)
    out = {}
    for twin, members in groups.items():
        vol = farinotti_volume_km3(table_path, twin)
        total = sum(areas[g] for g in members)
        if vol is None or not total > 0:
            continue
        if not 1 / VOLUME_AREA_MATCH <= vol / volume_area_km3(total) <= VOLUME_AREA_MATCH:
            continue
        weights = {g: volume_area_km3(areas[g]) for g in members}
        out.update({g: (vol * weights[g] / sum(weights.values()), twin) for g in members})
    return out


def read_rgi6_outlines(path: str | Path) -> gpd.GeoSeries:
    """RGI6 outlines (any vector file with an `RGIId`, `rgi_id` or `glacier_id` column of RGI60
    ids) as a GeoSeries indexed by id; a ValueError names the file and the problem."""
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - any reader error is the file's problem
        raise ValueError(f"RGI6 outlines {path}: cannot be read: {exc}") from None
    column = next((c for c in RGI6_ID_COLUMNS if c in frame.columns), None)
    if column is None:
        raise ValueError(f"RGI6 outlines {path}: no id column ({' or '.join(RGI6_ID_COLUMNS)}; "
                         f"has {', '.join(map(str, frame.columns))})")
    ids = frame[column].astype(str)
    other = ids[~ids.str.startswith("RGI60-")]
    if len(other):
        raise ValueError(f"RGI6 outlines {path}: ids that are not RGI6 ones: {', '.join(other[:3])}")
    if frame.crs is None:
        raise ValueError(f"RGI6 outlines {path}: no CRS")
    return gpd.GeoSeries(frame.geometry.values, index=ids.values, crs=frame.crs)


def located_farinotti(table_path: str | Path | None, glaciers: gpd.GeoSeries,
                      rgi6: gpd.GeoSeries) -> dict[str, tuple[float, str]]:
    """glacier -> (volume km3, the RGI6 ids it was matched to) by location: each RGI6 glacier's
    consensus volume is shared among the glaciers (`glaciers`, indexed by id) that overlap it by
    at least `LOCATED_MIN_SHARE` of its area, in proportion to the volume-area scaling of their
    overlaps, if together they cover `LOCATED_MIN_COVER` of it (a glacier split in divides, or a
    newer outline of a shrunk glacier, shares it; a neighbour touching it along a divide does
    not). A glacier's volume is the sum of its shares (two RGI6 glaciers in one older outline),
    kept if within a factor `VOLUME_AREA_MATCH` of volume-area scaling for its own area."""
    if not table_path or glaciers.empty or rgi6.empty:
        return {}
    ours, theirs = glaciers.to_crs(EQUAL_AREA_CRS), rgi6.to_crs(EQUAL_AREA_CRS)
    pairs = ours.sindex.query(theirs.geometry, predicate="intersects")  # (their index, our index)
    overlaps: dict[str, dict[str, float]] = {}
    for j, i in zip(*pairs, strict=True):
        rid, gid = str(theirs.index[j]), str(ours.index[i])
        km2 = float(ours.iloc[i].intersection(theirs.iloc[j]).area) / 1e6
        if km2 >= LOCATED_MIN_SHARE * float(theirs.iloc[j].area) / 1e6:
            overlaps.setdefault(rid, {})[gid] = km2
    volumes: dict[str, float] = {}
    sources: dict[str, list[str]] = {}
    for rid, shares in overlaps.items():
        vol = farinotti_volume_km3(table_path, rid)
        if vol is None or sum(shares.values()) < LOCATED_MIN_COVER * float(theirs.loc[rid].area) / 1e6:
            continue
        weights = {g: volume_area_km3(a) for g, a in shares.items()}
        total = sum(weights.values())
        for gid, w in weights.items():
            volumes[gid] = volumes.get(gid, 0.0) + vol * w / total
            sources.setdefault(gid, []).append(rid)
    out = {}
    for gid, vol in volumes.items():
        scaled = volume_area_km3(float(ours.loc[gid].area) / 1e6)
        if 1 / VOLUME_AREA_MATCH <= vol / scaled <= VOLUME_AREA_MATCH:
            out[gid] = (vol, "+".join(sorted(sources[gid])))
    return out


def _nearest(inventory: pd.DataFrame, year: int) -> pd.DataFrame:
    """Each glacier's outline row nearest `year` (a tie: the later one), indexed by glacier id."""
    near = inventory.assign(gap=(inventory["year"] - year).abs()).sort_values(["glacier_id", "gap", "year"])
    return near.groupby("glacier_id").head(1).set_index("glacier_id")


def outline_areas(inventory: pd.DataFrame, year: int) -> dict[str, float]:
    """Each glacier's outline area (km2) nearest `year` (an inventory: glacier_id, year, area_km2)."""
    return {str(g): float(a) for g, a in _nearest(inventory, year)["area_km2"].items()}


def outline_geometries(inventory: gpd.GeoDataFrame, year: int) -> gpd.GeoSeries:
    """Each glacier's outline nearest `year`, indexed by glacier id."""
    return gpd.GeoSeries(_nearest(inventory, year).geometry, crs=inventory.crs)


def read_reference_table(path: str | Path) -> pd.DataFrame:
    """A reference-volume CSV (`glacier_id`, `volume_km3`, optional `year`), checked; a
    ValueError names the file and the problem."""
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader error is the file's problem
        raise ValueError(f"reference volumes {path}: cannot be read as CSV: {exc}") from None
    missing = [c for c in ("glacier_id", "volume_km3") if c not in table.columns]
    if missing:
        raise ValueError(f"reference volumes {path}: no column {', '.join(missing)} (has {', '.join(table.columns)})")
    vol = pd.to_numeric(table["volume_km3"], errors="coerce")
    bad = table.loc[~(vol > 0), "glacier_id"].tolist()
    if bad:
        raise ValueError(f"reference volumes {path}: volume_km3 not a positive number for "
                         f"{', '.join(map(str, bad[:5]))}")
    if table["glacier_id"].duplicated().any():
        raise ValueError(f"reference volumes {path}: glacier ids listed twice: "
                         f"{', '.join(table.loc[table.glacier_id.duplicated(), 'glacier_id'].astype(str)[:5])}")
    return table.assign(volume_km3=vol)


def reference_volumes(spec_refs, farinotti_path: str | Path | None, glacier_ids: list[str],
                      default_year: int, areas: dict[str, float] | None = None,
                      outlines: gpd.GeoSeries | None = None) -> dict[str, tuple[float, int, str]]:
    """glacier -> (volume km3, year of the outline it belongs to, source) for every glacier of
    `glacier_ids` that has one: from the region's table if it gives one, else Farinotti, by RGI6
    id or, given the glaciers' outline `areas`, matched from another RGI version's id
    (`matched_farinotti`), or else, if the spec gives `rgi6_outlines` and `outlines` are the
    glaciers' own (nearest `default_year`, indexed by id), by location (`located_farinotti`)."""
    out: dict[str, tuple[float, int, str]] = {}
    if spec_refs is not None and spec_refs.path is not None:
        table = read_reference_table(spec_refs.path).set_index("glacier_id")
        for gid in glacier_ids:
            if gid in table.index:
                row = table.loc[gid]
                year = int(row["year"]) if "year" in table.columns and pd.notna(row["year"]) else spec_refs.year
                out[gid] = (float(row["volume_km3"]), year, Path(spec_refs.path).name)
        return out
    for gid in glacier_ids:
        vol = farinotti_volume_km3(farinotti_path, gid)
        if vol is not None:
            out[gid] = (vol, default_year, "Farinotti et al. (2019) consensus")
    wanted = set(glacier_ids)
    matched = matched_farinotti(farinotti_path, {g: a for g, a in (areas or {}).items() if g in wanted})
    for gid, (vol, _) in matched.items():
        out.setdefault(gid, (vol, default_year, "Farinotti et al. (2019) consensus, by the RGI6 id of the same number"))
    if spec_refs is not None and spec_refs.rgi6_outlines is not None and outlines is not None:
        left = outlines[[g for g in outlines.index if g in wanted and g not in out]]
        located = located_farinotti(farinotti_path, left, read_rgi6_outlines(spec_refs.rgi6_outlines))
        for gid, (vol, rids) in located.items():
            out[gid] = (vol, default_year, f"Farinotti et al. (2019) consensus, by location ({rids})")
    return out


GEODETIC_COLUMNS = ("glacier_id", "start", "end", "dmdtda_mwe")


def read_geodetic_table(path: str | Path) -> pd.DataFrame:
    """A geodetic mass-balance CSV (`glacier_id`, `start`, `end` years, `dmdtda_mwe` in m w.e. a-1,
    optional `err_mwe`), checked; a ValueError names the file and the problem."""
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader error is the file's problem
        raise ValueError(f"geodetic mass balances {path}: cannot be read as CSV: {exc}") from None
    missing = [c for c in GEODETIC_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"geodetic mass balances {path}: no column {', '.join(missing)} "
                         f"(has {', '.join(table.columns)})")
    nums = table[["start", "end", "dmdtda_mwe"]].apply(pd.to_numeric, errors="coerce")
    bad = table.loc[nums.isna().any(axis=1) | ~(nums["start"] < nums["end"]), "glacier_id"].tolist()
    if bad:
        raise ValueError(f"geodetic mass balances {path}: start < end and a number in dmdtda_mwe needed for "
                         f"{', '.join(map(str, bad[:5]))}")
    if table["glacier_id"].duplicated().any():
        raise ValueError(f"geodetic mass balances {path}: glacier ids listed twice")
    return table.assign(start=nums["start"].astype(int), end=nums["end"].astype(int), dmdtda_mwe=nums["dmdtda_mwe"])
