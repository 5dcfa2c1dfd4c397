"""Mass-balance forcing for one glacier, from an ELA table or monthly climate NetCDF files."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..constants import END_YEAR, START_YEAR
from ..science.massbalance import (
    BalanceProfiles,
    MonthlySeries,
    TemperatureIndexParams,
    bias_for_ela,
    profiles_from_ela,
    profiles_from_monthly_climate,
)
from .region import ClimateForcing, ClimateSource, ElaTableForcing

GEOPOTENTIAL_G = 9.80665


@dataclass
class ForcingInfo:
    kind: str
    details: dict = field(default_factory=dict)


def ela_table_profiles(forcing: ElaTableForcing, z: np.ndarray) -> tuple[BalanceProfiles, ForcingInfo]:
    table = pd.read_csv(forcing.path)
    need = {"year", "ela", "grad_abl", "grad_acc", "acc_max"}
    if missing := need - set(table.columns):
        raise ValueError(f"mass-balance table {forcing.path}: missing columns {sorted(missing)}")
    table = table.sort_values("year")
    years = table["year"].to_numpy(int)
    if years.min() > START_YEAR or years.max() < END_YEAR:
        raise ValueError(f"mass-balance table {forcing.path} covers {years.min()}-{years.max()}, "
                         f"not {START_YEAR}-{END_YEAR}")
    prof = profiles_from_ela(years, table["ela"].to_numpy(float), table["grad_abl"].to_numpy(float),
                             table["grad_acc"].to_numpy(float), table["acc_max"].to_numpy(float), z)
    return prof, ForcingInfo("ela_table", {"source": str(forcing.path)})


def _coord(ds: xr.Dataset, names: tuple[str, ...]) -> str:
    for n in names:
        if n in ds.coords or n in ds.dims:
            return n
    raise ValueError(f"climate file has none of the coordinates {names}")


def _nearest(da: xr.DataArray, lon: float, lat: float) -> xr.DataArray:
    lat_name = _coord(da.to_dataset(name="v"), ("lat", "latitude"))
    lon_name = _coord(da.to_dataset(name="v"), ("lon", "longitude"))
    return da.sel({lat_name: lat, lon_name: lon}, method="nearest")


def read_monthly_source(src: ClimateSource, lon: float, lat: float) -> MonthlySeries:
    """Temperature (degC), precipitation (mm/month) and reference elevation at the grid cell
    nearest to (lon, lat). Units are read from the variables' `units` attributes."""
    paths = src.path if isinstance(src.path, tuple) else (src.path,)
    ds = xr.merge([xr.open_dataset(p) for p in paths], compat="override", join="outer")
    for var in (src.temperature, src.precipitation):
        if var not in ds:
            raise ValueError(f"climate source {paths}: no variable {var!r}")
    t = _nearest(ds[src.temperature], lon, lat).load()
    p = _nearest(ds[src.precipitation], lon, lat).load()
    time = pd.DatetimeIndex(t["time"].values)
    days = time.days_in_month.to_numpy(float)
    temp = t.values.astype(float)
    if t.attrs.get("units", "").lower() in ("k", "kelvin"):
        temp = temp - 273.15
    prcp = p.values.astype(float)
    punits = p.attrs.get("units", "").lower()
    if punits == "m":  # ERA5 monthly means: metres of water per day
        prcp = prcp * 1000.0 * days
    elif punits not in ("kg m-2", "mm", "kg m**-2", "mm/month"):
        raise ValueError(f"climate source {paths}: unknown precipitation units {punits!r}")
    inv = xr.open_dataset(src.invariant_path) if src.invariant_path else ds
    if src.elevation:
        z_ref = float(_nearest(inv[src.elevation].squeeze(drop=True), lon, lat))
    elif src.geopotential:
        z_ref = float(_nearest(inv[src.geopotential].squeeze(drop=True), lon, lat)) / GEOPOTENTIAL_G
    else:
        raise ValueError(f"climate source {paths}: give `elevation` or `geopotential`")
    ok = np.isfinite(temp) & np.isfinite(prcp)
    return MonthlySeries(time.year.to_numpy()[ok], time.month.to_numpy()[ok], days[ok], temp[ok], prcp[ok], z_ref)


def merge_monthly(series: list[MonthlySeries]) -> tuple[MonthlySeries, dict]:
    """The first source is the reference; each later one extends it after its last month with
    monthly anomalies relative to the overlap (additive for temperature, multiplicative for
    precipitation), and both are moved to the reference's elevation by the overlap means."""
    ref = series[0]
    info: dict = {"sources": 1}
    for nxt in series[1:]:
        key_ref = ref.year * 12 + ref.month
        key_nxt = nxt.year * 12 + nxt.month
        overlap = np.isin(key_nxt, key_ref)
        if not overlap.any():
            raise ValueError("climate sources do not overlap: cannot merge them")
        dt, fp = np.zeros(12), np.ones(12)
        for mth in range(1, 13):
            a = overlap & (nxt.month == mth)
            b = np.isin(key_ref, key_nxt[a])
            dt[mth - 1] = ref.temp_c[b].mean() - nxt.temp_c[a].mean()
            fp[mth - 1] = ref.prcp_mm[b].sum() / max(nxt.prcp_mm[a].sum(), 1e-9)
        after = key_nxt > key_ref.max()
        idx = nxt.month[after] - 1
        ref = MonthlySeries(
            np.concatenate([ref.year, nxt.year[after]]),
            np.concatenate([ref.month, nxt.month[after]]),
            np.concatenate([ref.days, nxt.days[after]]),
            np.concatenate([ref.temp_c, nxt.temp_c[after] + dt[idx]]),
            np.concatenate([ref.prcp_mm, nxt.prcp_mm[after] * fp[idx]]),
            ref.z_ref,
        )
        info["sources"] += 1
        info[f"merge_{info['sources']}_overlap_months"] = int(overlap.sum())
    return ref, info


def pad_years(s: MonthlySeries, last_year: int, window: int = 10) -> tuple[MonthlySeries, list[int]]:
    """Fill whole years after the series' end with the monthly climatology of its last `window` years."""
    complete = [y for y in np.unique(s.year) if np.count_nonzero(s.year == y) == 12]
    end = max(complete)
    padded = list(range(end + 1, last_year + 1))
    if not padded:
        return s, []
    base = (s.year > end - window) & (s.year <= end)
    clim_t = np.array([s.temp_c[base & (s.month == m)].mean() for m in range(1, 13)])
    clim_p = np.array([s.prcp_mm[base & (s.month == m)].mean() for m in range(1, 13)])
    keep = s.year <= end
    years = np.repeat(padded, 12)
    months = np.tile(np.arange(1, 13), len(padded))
    days = pd.DatetimeIndex([f"{y}-{m:02d}-01" for y, m in zip(years, months)]).days_in_month.to_numpy(float)
    return MonthlySeries(
        np.concatenate([s.year[keep], years]), np.concatenate([s.month[keep], months]),
        np.concatenate([s.days[keep], days]), np.concatenate([s.temp_c[keep], clim_t[months - 1]]),
        np.concatenate([s.prcp_mm[keep], clim_p[months - 1]]), s.z_ref,
    ), padded


def climate_profiles(
    forcing: ClimateForcing, lon: float, lat: float, z: np.ndarray, target_ela: float
) -> tuple[BalanceProfiles, ForcingInfo]:
    """Temperature-index balance profiles, with the temperature bias that puts the mean ELA of the
    reference years at `target_ela` (the median elevation of the initial outline)."""
    merged, info = merge_monthly([read_monthly_source(s, lon, lat) for s in forcing.sources])
    merged, padded = pad_years(merged, END_YEAR)
    if merged.year.min() > START_YEAR:
        raise ValueError(f"climate starts in {merged.year.min()}, after {START_YEAR}")
    params = TemperatureIndexParams(ddf_mm_per_day_k=forcing.ddf, prcp_factor=forcing.prcp_factor,
                                    lapse_k_per_m=forcing.lapse_rate)
    series = merged.between(START_YEAR, END_YEAR)
    bias = bias_for_ela(series, z, params, target_ela=target_ela, ref_years=forcing.reference_years)
    prof = profiles_from_monthly_climate(series, z, params, bias_k=bias)
    info.update({"temperature_bias_k": round(bias, 3), "reference_elevation_m": round(merged.z_ref, 1),
                 "padded_years": padded, "target_ela_m": round(target_ela, 1)})
    return prof, ForcingInfo("monthly_climate", info)
