"""Surface mass balance forcing as yearly balance profiles b(year, z) in m ice eq. per year.

Every forcing source ends up in one form, `BalanceProfiles`: a table of annual balance against
elevation, which the IGM process reads cell by cell at the simulated surface (so the geometry
feeds back on the balance). Two sources:

* an ELA series (the demo region, or any table of year/ELA/gradients), IGM's `smb.simple` law:
  b = grad_abl (z - ELA) below the ELA, min(grad_acc (z - ELA), acc_max) above;
* monthly temperature and precipitation (NetCDF reanalysis), a temperature-index model:
  b = sum over the months of [P_solid(z) - DDF * days * max(T(z) - T_melt, 0)] / 0.9,
  with T(z) = T_ref + lapse (z - z_ref) + bias, solid fraction 1 below 0 C, 0 above 2 C.

A shift `d_ela` (m) moves the whole profile up: b'(z) = b(z - d_ela). It is the one parameter the
calibration to control outlines tunes (issue 3); for the temperature-index source it is a
temperature change of about -lapse * d_ela.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..constants import SPINUP_CLIMATE_YEARS, START_YEAR, TREND_SPINUP_YEARS

ICE_WE = 0.9  # m w.e. per m ice eq. (rho_ice / rho_water)
PROFILE_STEP_M = 10.0


@dataclass(frozen=True)
class BalanceProfiles:
    years: np.ndarray  # (n,) int
    z: np.ndarray  # (m,) float, ascending, evenly spaced
    b: np.ndarray  # (n, m) m ice eq. / yr

    def __post_init__(self) -> None:
        if self.b.shape != (len(self.years), len(self.z)):
            raise ValueError(f"profile table shape {self.b.shape} != ({len(self.years)}, {len(self.z)})")
        if len(self.z) < 2 or not np.allclose(np.diff(self.z), self.z[1] - self.z[0]):
            raise ValueError("profile elevations must be evenly spaced and ascending")
        if not np.isfinite(self.b).all():
            raise ValueError("balance profiles contain non-finite values")

    def at(self, year: int, z: np.ndarray, d_ela: float = 0.0, spinup_offset: float = 0.0) -> np.ndarray:
        """Balance at elevations `z` in `year` (clamped to the table's elevations), the ELA shifted
        by `d_ela`; before 1960 shifted more by the spin-up's trend `spinup_shift(year, spinup_offset)`.
        Before the table's first year: the spin-up climate (`spinup_profile`); after its last: the
        last year."""
        d_ela = d_ela + spinup_shift(year, spinup_offset)
        return np.interp(np.asarray(z, dtype="float64") - d_ela, self.z, self.profile(year))

    def profile(self, year: int) -> np.ndarray:
        if year < self.years[0]:
            return self.spinup_profile()
        return self.b[int(np.clip(np.searchsorted(self.years, year, side="right") - 1, 0, len(self.years) - 1))]

    def spinup_profile(self, n_years: int = SPINUP_CLIMATE_YEARS) -> np.ndarray:
        """The constant climate of the years before the table: the mean profile of its first
        `n_years` from 1960 (a table with years before 1960 uses its own for them)."""
        first = int(np.searchsorted(self.years, START_YEAR))
        return self.b[first:first + n_years].mean(axis=0)

    def mean_profile(self) -> np.ndarray:
        """The mean profile of the table's years from 1960 on (the simulated period): the balance the
        inversion's apparent balance comes from, whatever years before 1960 the table holds."""
        return self.b[self.years >= START_YEAR].mean(axis=0)

    def balanced_shift(self, z: np.ndarray, bounds: tuple[float, float] = (-2000.0, 2000.0)) -> float:
        """The ELA shift (m) that puts surface cells at elevations `z` in balance (mean b = 0)
        under the spin-up climate: where a spin-up from a first guess of that glacier starts."""
        z = np.asarray(z, dtype="float64").ravel()
        if z.size == 0:
            return 0.0
        mean_b = lambda p: float(np.interp(z - p, self.z, self.spinup_profile()).mean())  # noqa: E731
        lo, hi = bounds
        if mean_b(lo) * mean_b(hi) > 0:
            return lo if mean_b(lo) < 0 else hi
        return float(brentq(mean_b, lo, hi, xtol=0.5))

    def ela(self, year: int) -> float:
        return equilibrium_line_altitude(self.z, self.b[int(np.searchsorted(self.years, year))])


def spinup_shift(year: int, offset: float) -> float:
    """The spin-up climate's further ELA shift in `year` (before 1960) for a spin-up `offset`: a
    linear trend from 2 x offset `TREND_SPINUP_YEARS` before 1960 to 0 in 1960, so `offset` is its
    mean over those years. An offset below 0 is a colder past: the glacier grows to a maximum and
    is still retreating in 1960 (a constant offset left Hintereisferner advancing until 1985)."""
    if year >= START_YEAR or offset == 0.0:
        return 0.0
    return offset * min(2.0, 2.0 * (START_YEAR - year) / TREND_SPINUP_YEARS)


def elevation_bins(zmin: float, zmax: float, margin: float = 1000.0, step: float = PROFILE_STEP_M) -> np.ndarray:
    lo = np.floor((zmin - margin) / step) * step
    hi = np.ceil((zmax + margin) / step) * step
    return np.arange(lo, hi + step / 2, step)


def profiles_from_ela(
    years: np.ndarray,
    ela: np.ndarray,
    grad_abl: np.ndarray,
    grad_acc: np.ndarray,
    acc_max: np.ndarray,
    z: np.ndarray,
) -> BalanceProfiles:
    """IGM `smb.simple` law evaluated on elevation bins, one profile per year."""
    dz = z[None, :] - np.asarray(ela, dtype="float64")[:, None]
    b = np.where(dz < 0, dz * np.asarray(grad_abl)[:, None], dz * np.asarray(grad_acc)[:, None])
    b = np.minimum(b, np.asarray(acc_max, dtype="float64")[:, None])
    return BalanceProfiles(np.asarray(years, dtype=int), np.asarray(z, dtype="float64"), b)


@dataclass(frozen=True)
class TemperatureIndexParams:
    ddf_mm_per_day_k: float = 5.0  # degree-day factor, mm w.e. d-1 K-1
    t_melt_c: float = -1.0
    t_snow_c: float = 0.0
    t_rain_c: float = 2.0
    lapse_k_per_m: float = -0.0065
    prcp_factor: float = 1.0


def monthly_balance(
    temp_c: np.ndarray,
    prcp_mm: np.ndarray,
    days: np.ndarray,
    z_ref: float,
    z: np.ndarray,
    params: TemperatureIndexParams,
    bias_k: float = 0.0,
) -> np.ndarray:
    """Mass balance (mm w.e.) per month (rows) and elevation (columns)."""
    t = temp_c[:, None] + params.lapse_k_per_m * (z[None, :] - z_ref) + bias_k
    solid = np.clip((params.t_rain_c - t) / (params.t_rain_c - params.t_snow_c), 0.0, 1.0)
    acc = params.prcp_factor * prcp_mm[:, None] * solid
    melt = params.ddf_mm_per_day_k * days[:, None] * np.maximum(t - params.t_melt_c, 0.0)
    return acc - melt


@dataclass
class MonthlySeries:
    """A monthly climate series at one point: temperature (degC) and precipitation (mm/month) at
    the reference elevation `z_ref`."""

    year: np.ndarray
    month: np.ndarray
    days: np.ndarray
    temp_c: np.ndarray
    prcp_mm: np.ndarray
    z_ref: float

    def between(self, first: int, last: int) -> MonthlySeries:
        sel = (self.year >= first) & (self.year <= last)
        return MonthlySeries(self.year[sel], self.month[sel], self.days[sel], self.temp_c[sel], self.prcp_mm[sel],
                             self.z_ref)


def profiles_from_monthly_climate(
    series: MonthlySeries, z: np.ndarray, params: TemperatureIndexParams, bias_k: float = 0.0
) -> BalanceProfiles:
    """Annual (calendar-year) balance profiles from a monthly series; years need all 12 months."""
    mb = monthly_balance(series.temp_c, series.prcp_mm, series.days, series.z_ref, z, params, bias_k)
    out_years, rows = [], []
    for year in np.unique(series.year):
        sel = series.year == year
        if np.count_nonzero(sel) != 12 or sorted(series.month[sel]) != list(range(1, 13)):
            continue
        out_years.append(int(year))
        rows.append(mb[sel].sum(axis=0) / 1000.0 / ICE_WE)
    if not rows:
        raise ValueError("the climate series holds no complete calendar year")
    return BalanceProfiles(np.array(out_years), z.astype("float64"), np.array(rows))


def equilibrium_line_altitude(z: np.ndarray, b: np.ndarray) -> float:
    """Lowest elevation where the profile crosses zero (linear between bins)."""
    sign = np.sign(b)
    idx = np.flatnonzero((sign[:-1] <= 0) & (sign[1:] > 0))
    if idx.size == 0:
        return float(z[-1]) if b[-1] <= 0 else float(z[0])
    i = int(idx[0])
    if b[i + 1] == b[i]:
        return float(z[i])
    return float(z[i] + (0 - b[i]) * (z[i + 1] - z[i]) / (b[i + 1] - b[i]))


def bias_for_ela(
    series: MonthlySeries,
    z: np.ndarray,
    params: TemperatureIndexParams,
    target_ela: float,
    ref_years: tuple[int, int],
) -> float:
    """Temperature bias (K) that puts the mean ELA of `ref_years` at `target_ela`.

    The usual first guess without mass-balance data: a glacier roughly in balance has its ELA
    near its median elevation."""
    ref = series.between(*ref_years)
    if ref.year.size == 0:
        raise ValueError(f"no climate data in the reference years {ref_years}")

    def misfit(bias: float) -> float:
        p = profiles_from_monthly_climate(ref, z, params, bias)
        return equilibrium_line_altitude(z, p.b.mean(axis=0)) - target_ela

    return float(brentq(misfit, -15.0, 15.0, xtol=1e-3))
