"""Reference data beside the model: Farinotti et al. (2019) consensus volumes per RGI6 glacier."""

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
