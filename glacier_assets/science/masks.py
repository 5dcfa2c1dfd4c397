"""Glacier masks from thickness and the area figures derived from them."""

from __future__ import annotations

import re
import zlib

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


# Mask codes: one positive int32 per glacier, from its id alone, so a glacier's code never changes
# when other glaciers are added or removed. The ranges below do not overlap.
_RGI_CODE = re.compile(r"^RGI\d0-(\d{2})\.(\d{5})(?:_d(\d{2}))?$")  # RGI 5/6 ids, and divides (_dNN)
_RGI7_CODE = re.compile(r"^RGI2000-v7\.0-([GC])-(\d{2})-(\d{5})$")  # RGI 7 glaciers (G) and complexes (C)
DIVIDE_STEP = 2_000_000  # RGI 5/6: region * 100000 + number (< 2,000,000), plus divide * DIVIDE_STEP
RGI7_BASE = {"G": 200_000_000, "C": 202_000_000}  # above every RGI 5/6 code (divides < 200,000,000)
HASHED_BASE = 1 << 30  # any other id: HASHED_BASE + CRC-32 of the id folded into [0, 2**30)


def glacier_code(glacier_id: str) -> int:
    """The glacier's mask code, a positive int32 that depends on its id only: RGI60-13.01234 ->
    1301234 (region * 100000 + number), its divide _d02 adds 2 x DIVIDE_STEP; RGI 7 ids
    (RGI2000-v7.0-G-11-01234) the same above RGI7_BASE; any other id a CRC-32 hash above
    HASHED_BASE (two such ids can share a code: `check_codes` names them)."""
    m = _RGI_CODE.match(glacier_id)
    if m:
        return int(m.group(1)) * 100_000 + int(m.group(2)) + int(m.group(3) or 0) * DIVIDE_STEP
    m = _RGI7_CODE.match(glacier_id)
    if m:
        return RGI7_BASE[m.group(1)] + int(m.group(2)) * 100_000 + int(m.group(3))
    return HASHED_BASE + zlib.crc32(glacier_id.encode()) % HASHED_BASE


def check_codes(glacier_ids) -> dict[str, int]:
    """Each glacier's code; ValueError naming the glaciers if two share one (possible only for ids
    that are neither RGI 5/6 nor RGI 7)."""
    codes: dict[str, int] = {}
    seen: dict[int, str] = {}
    for gid in glacier_ids:
        code = glacier_code(gid)
        if seen.get(code, gid) != gid:
            raise ValueError(f"glaciers {seen[code]} and {gid} have the same mask code {code}: rename one")
        codes[gid], seen[code] = code, gid
    return codes
