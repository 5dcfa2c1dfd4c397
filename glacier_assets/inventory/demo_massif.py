"""The demo region's massif (`demo.py`): twelve mountains on a plateau at real coordinates in the
Geladandong area, their 50 m bed, the public balance forcing, and each glacier's outline dates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from ..constants import (
    EPOCHS,
    INITIAL_EPOCH,
)
from ..science.grids import Grid

DEMO_CRS = "EPSG:32646"
DEMO_CENTER_UTM = (323_400.0, 3_702_800.0)  # 91.10 E, 33.45 N in EPSG:32646, snapped to 100 m
DEM_RESOLUTION_M = 50.0
HALF_EXTENT_M = (24_000.0, 18_000.0)
BASE_ELEVATION_M = 5_000.0
# Public forcing
ELA_1960_M = 5_720.0
ELA_TREND_M_PER_YR = 5.0  # from 1980 on
GRAD_ABL = 0.005  # m ice eq. a-1 m-1
GRAD_ACC = 0.002
ACC_MAX = 0.5  # m ice eq. a-1
ELA_NOISE_M = 25.0
# Acquisition years: the initial inventory's per glacier, then each control epoch's offsets
INITIAL_YEARS = (1972, 1977)
CONTROL_YEAR_OFFSETS = {1990: (-2, 2), 2000: (-1, 2), 2010: (-2, 1), 2020: (-3, -1)}


@dataclass(frozen=True)
class DemoMountain:
    number: int  # glacier RGI60-13.9xxxx
    east_km: float
    north_km: float
    relief_m: float  # summit above the plateau
    radius_m: float
    stretch: float  # elongation of the dome along `azimuth_deg`
    azimuth_deg: float
    ela_offset_m: float  # the glacier's local-climate ELA offset in the truth

    @property
    def glacier_id(self) -> str:
        return f"RGI60-13.{90000 + self.number:05d}"


DEMO_MOUNTAINS: tuple[DemoMountain, ...] = (
    DemoMountain(1, -16.0, 10.0, 1080, 2000, 1.3, 30, 10),
    DemoMountain(2, -5.5, 11.0, 1300, 2600, 1.5, 100, -25),
    DemoMountain(3, 5.0, 11.5, 960, 1700, 1.2, 60, 0),
    DemoMountain(4, 15.5, 9.0, 1180, 2300, 1.6, 150, 20),
    DemoMountain(5, -15.0, -0.5, 1000, 1800, 1.4, 80, -15),
    DemoMountain(6, -3.0, 0.0, 1540, 2400, 1.5, 120, -30),
    DemoMountain(7, 8.5, -1.0, 1240, 2400, 1.3, 10, 30),
    DemoMountain(8, 17.0, 0.5, 860, 800, 1.2, 45, 0),
    DemoMountain(9, -14.0, -11.0, 1150, 2200, 1.5, 170, 15),
    DemoMountain(10, -3.0, -11.5, 900, 1300, 1.1, 90, -10),
    DemoMountain(11, 6.5, -11.0, 1340, 2700, 1.4, 60, 25),
    DemoMountain(12, 16.5, -10.0, 1020, 1900, 1.3, 130, -5),
)


def public_forcing() -> pd.DataFrame:
    """The mass-balance forcing users get: year, ela, grad_abl, grad_acc, acc_max."""
    years = np.arange(EPOCHS[0], EPOCHS[-1] + 1)
    rng = np.random.default_rng(1960)
    noise = gaussian_filter(rng.normal(0.0, 1.0, years.size), 0.8)
    noise = noise / noise.std() * ELA_NOISE_M
    ela = ELA_1960_M + ELA_TREND_M_PER_YR * np.clip(years - 1980, 0, None) + noise
    return pd.DataFrame(
        {"year": years, "ela": np.round(ela, 1), "grad_abl": GRAD_ABL, "grad_acc": GRAD_ACC, "acc_max": ACC_MAX}
    )


def outline_years(number: int) -> dict[int, int]:
    """Acquisition year of each outline of twin glacier `number`, keyed by the epoch it stands for."""
    rng = np.random.default_rng(7000 + number)
    years = {INITIAL_EPOCH: int(rng.integers(INITIAL_YEARS[0], INITIAL_YEARS[1] + 1))}
    for epoch, (lo, hi) in CONTROL_YEAR_OFFSETS.items():
        years[epoch] = epoch + int(rng.integers(lo, hi + 1))
    return years


def demo_grid(res: float) -> Grid:
    cx, cy = DEMO_CENTER_UTM
    hx, hy = HALF_EXTENT_M
    return Grid(DEMO_CRS, cx - hx, cy + hy, res, int(2 * hx / res), int(2 * hy / res))


def _dome(grid: Grid, m: DemoMountain) -> np.ndarray:
    cx, cy = DEMO_CENTER_UTM
    X, Y = np.meshgrid(grid.x - (cx + 1000 * m.east_km), grid.y - (cy + 1000 * m.north_km))
    az = np.deg2rad(m.azimuth_deg)
    along = X * np.sin(az) + Y * np.cos(az)
    across = X * np.cos(az) - Y * np.sin(az)
    r = np.hypot(along / m.stretch, across) / m.radius_m
    return m.relief_m * np.exp(-(r**1.6))


def demo_bed(grid: Grid) -> np.ndarray:
    """Bed elevation on `grid` (any resolution; the roughness is defined on the 50 m grid)."""
    fine = demo_grid(DEM_RESOLUTION_M)
    rng = np.random.default_rng(33)
    undulation = gaussian_filter(rng.normal(0, 1, fine.shape), 40) * 40 * 60
    rough = gaussian_filter(rng.normal(0, 1, fine.shape), 3) * 3 * 25
    bed50 = BASE_ELEVATION_M + undulation + rough
    for m in DEMO_MOUNTAINS:
        bed50 = bed50 + _dome(fine, m)
    if grid.res == fine.res:
        return bed50
    factor = int(round(grid.res / fine.res))
    assert grid.crs == fine.crs and factor * fine.res == grid.res
    r0 = int(round((fine.ymax - grid.ymax) / fine.res))
    c0 = int(round((grid.xmin - fine.xmin) / fine.res))
    sub = bed50[r0 : r0 + grid.height * factor, c0 : c0 + grid.width * factor]
    return sub.reshape(grid.height, factor, grid.width, factor).mean(axis=(1, 3))
