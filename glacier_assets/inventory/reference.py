"""Reference ice volumes: a region's own table, or the Farinotti et al. (2019) consensus per RGI6
glacier. The regional rheology factor is calibrated to them (science/inversion.py). And geodetic
mass balances (as Hugonnet et al. 2021 give them per glacier), which the simulated volume change
is validated against."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd


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
                      default_year: int) -> dict[str, tuple[float, int, str]]:
    """glacier -> (volume km3, year of the outline it belongs to, source) for every glacier of
    `glacier_ids` that has one: from the region's table if it gives one, else Farinotti."""
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
