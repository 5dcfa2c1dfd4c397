"""Reference ice volumes: a region's own table, or the Farinotti et al. (2019) consensus per RGI6
glacier. The regional rheology factor is calibrated to them (science/inversion.py). And geodetic
mass balances (as Hugonnet et al. 2021 give them per glacier), which the simulated volume change
is validated against."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..constants import VOLUME_AREA_C, VOLUME_AREA_GAMMA, VOLUME_AREA_MATCH


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


def outline_areas(inventory: pd.DataFrame, year: int) -> dict[str, float]:
    """Each glacier's outline area (km2) nearest `year` (an inventory: glacier_id, year, area_km2)."""
    near = inventory.assign(gap=(inventory["year"] - year).abs()).sort_values(["glacier_id", "gap", "year"])
    return {str(g): float(a) for g, a in near.groupby("glacier_id")["area_km2"].first().items()}


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
                      default_year: int, areas: dict[str, float] | None = None) -> dict[str, tuple[float, int, str]]:
    """glacier -> (volume km3, year of the outline it belongs to, source) for every glacier of
    `glacier_ids` that has one: from the region's table if it gives one, else Farinotti, by RGI6
    id or, given the glaciers' outline `areas`, matched from another RGI version's id
    (`matched_farinotti`)."""
    out: dict[str, tuple[float, int, str]] = {}
    if spec_refs is not None:
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
    matched = matched_farinotti(farinotti_path, {g: a for g, a in (areas or {}).items() if g in set(glacier_ids)})
    for gid, (vol, _) in matched.items():
        out.setdefault(gid, (vol, default_year, "Farinotti et al. (2019) consensus, by the RGI6 id of the same number"))
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
