"""Glacier masks from thickness and the area figures derived from them."""

from __future__ import annotations

import re

import numpy as np

from ..constants import ICE_THRESHOLD_M


def glacier_mask(thickness: np.ndarray, code: int, threshold: float = ICE_THRESHOLD_M) -> np.ndarray:
    """Cells with thickness >= threshold carry the glacier's integer code; all others 0."""
    if code <= 0:
        raise ValueError(f"glacier code must be a positive integer, got {code}")
    thk = np.nan_to_num(thickness, nan=0.0)
    return np.where(thk >= threshold, np.int32(code), np.int32(0)).astype("int32")


def glaciated_area_km2(thickness: np.ndarray, cell_area_m2: float, threshold: float = ICE_THRESHOLD_M) -> float:
    """Area as the dataset counts it: cells with thickness >= threshold times the cell area."""
    return float(np.count_nonzero(np.nan_to_num(thickness, nan=0.0) >= threshold) * cell_area_m2 / 1e6)


def volume_km3(thickness: np.ndarray, cell_area_m2: float) -> float:
    return float(np.nansum(np.clip(thickness, 0.0, None)) * cell_area_m2 / 1e9)


_RGI_CODE = re.compile(r"^RGI\d0-(\d{2})\.(\d{5})$")


def glacier_code(glacier_id: str, fallback: int | None = None) -> int:
    """A unique positive int32 per glacier: region * 100000 + number for RGI ids (RGI60-13.01234 ->
    1301234); other id schemes use the inventory's running number `fallback`."""
    m = _RGI_CODE.match(glacier_id)
    if m:
        return int(m.group(1)) * 100_000 + int(m.group(2))
    if fallback is None or fallback <= 0:
        raise ValueError(f"glacier {glacier_id}: not an RGI id and no running number given for its mask code")
    return int(fallback)
